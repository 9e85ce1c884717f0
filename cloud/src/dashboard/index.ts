// Public entry of the dashboard: the component, its options and the page build.
export { createDashboard, type Dashboard, type DashboardStats } from './dashboard.ts';
export { DASHBOARD_DEFAULTS, DASHBOARD_KINDS, DEFAULT_PAGE_DIR, dashboardTopics, type DashboardConfig, type DashboardOptions } from './options.ts';
export { buildPage, ensurePage } from './build.ts';
export { aqiOf } from './state.ts';
export { latestWarehouseLoad } from './freshness.ts';
export type * from './messages.ts';
