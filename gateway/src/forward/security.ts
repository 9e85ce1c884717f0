// The uplink's TLS and SASL, loaded by @city/protocol's loadKafkaSecurity, as @platformatic/kafka takes them.
import type { ConnectionOptions, SASLOptions } from '@platformatic/kafka';
import type { LoadedKafkaSecurity } from '@city/protocol';

export type UplinkSecurity = LoadedKafkaSecurity;

const MECHANISMS = { plain: 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512', oauthbearer: 'OAUTHBEARER' } as const;

export function clientSecurity(security: UplinkSecurity | undefined): Pick<ConnectionOptions, 'tls' | 'sasl' | 'tlsServerName'> {
  if (security === undefined) return {};
  const out: Pick<ConnectionOptions, 'tls' | 'sasl' | 'tlsServerName'> = {};
  const tls = security.tls;
  if (tls !== undefined) {
    out.tls = {
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: tls.key }),
      // Never turned off: a broker whose certificate does not check out is refused.
      rejectUnauthorized: true,
    };
    // The name checked (and sent as SNI) is the host dialled, unless the config names another.
    if (tls.serverName !== undefined) out.tlsServerName = tls.serverName;
  }
  const sasl = security.sasl;
  if (sasl !== undefined) {
    const options: SASLOptions = { mechanism: MECHANISMS[sasl.mechanism] };
    if (sasl.username !== undefined) options.username = sasl.username;
    if (sasl.password !== undefined) options.password = sasl.password;
    if (sasl.token !== undefined) options.token = sasl.token;
    out.sasl = options;
  }
  return out;
}
