export { createGateway, defaultLog, type Gateway, type GatewayEvents, type GatewayStats, type Log, type LogLevel } from './gateway.ts';
export { GATEWAY_DEFAULTS, resolveGatewayOptions, type GatewayConfig, type GatewayOptions } from './options.ts';
export { DURABILITY, openBuffer, type Durability, type OutboxBuffer, type OutboxRecord } from './buffer.ts';
export { gatewayErrors } from './errors.ts';
