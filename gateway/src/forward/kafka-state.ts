// What the gateway knows of Kafka, from its last send: a broker that does not answer is not the same
// trouble as a broker that answers "this topic does not exist" (created by nobody yet), nor as one that
// refuses our TLS or credentials. All are buffered through; the reason names which, for /healthz.

export const KAFKA_STATES = ['unknown', 'reachable', 'unreachable', 'topic-missing'] as const;
export type KafkaStateName = (typeof KAFKA_STATES)[number];

export interface KafkaState {
  state: KafkaStateName;
  /** With topic-missing: the topics the last batch was for that the brokers do not have. */
  topicsMissing?: string[];
  /** Why the last send failed (unreachable, topic-missing), naming the cause (TLS, SASL, network). */
  error?: string;
}

/** unreachable splits into these for the error code; topic is topic-missing. */
export type KafkaFailureKind = 'topic' | 'tls' | 'auth' | 'network';

interface ErrorLike {
  message?: unknown;
  code?: unknown;
  /** kafkajs: the protocol error's name. */
  type?: unknown;
  /** @platformatic/kafka: the protocol error's name and number. */
  apiId?: unknown;
  apiCode?: unknown;
  serverErrorMessage?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** Every error in a chain of causes and aggregates, depth first, the outermost first. */
function chain(err: unknown, out: ErrorLike[] = [], depth = 0): ErrorLike[] {
  if (typeof err !== 'object' || err === null || depth > 8 || out.length > 64) return out;
  const e = err as ErrorLike;
  out.push(e);
  if (Array.isArray(e.errors)) for (const inner of e.errors) chain(inner, out, depth + 1);
  chain(e.cause, out, depth + 1);
  return out;
}

const text = (e: ErrorLike): string => (typeof e.message === 'string' ? e.message : '');

// @platformatic/kafka 2.12 against the real broker, checked: a missing topic (autocreateTopics off) is a
// UserError "Unknown topic <name>." raised from the metadata answer (protocol error 3); a produce to a
// topic deleted meanwhile carries the protocol error itself. kafkajs names it in `type`.
const UNKNOWN_TOPIC = 'UNKNOWN_TOPIC_OR_PARTITION';
const isTopicError = (e: ErrorLike) => e.type === UNKNOWN_TOPIC || e.apiId === UNKNOWN_TOPIC || (e.code === 'PLT_KFK_USER' && /^Unknown topic /.test(text(e)));

const AUTH_IDS = new Set(['SASL_AUTHENTICATION_FAILED', 'UNSUPPORTED_SASL_MECHANISM', 'ILLEGAL_SASL_STATE', 'TOPIC_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED']);
const isAuthError = (e: ErrorLike) =>
  e.code === 'PLT_KFK_AUTHENTICATION' || (typeof e.apiId === 'string' && AUTH_IDS.has(e.apiId)) || (typeof e.type === 'string' && AUTH_IDS.has(e.type));

// Node's TLS errors: certificate checks (OpenSSL's names) and handshakes that are not TLS at all
// (a TLS client at a plaintext listener reads "wrong version number" / "packet length too long").
const TLS_CODES = /^(ERR_SSL_|ERR_TLS_|UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED|CERT_|HOSTNAME_MISMATCH)/;
// @platformatic/kafka names both mismatches itself: "Broker requires TLS." (plaintext client, TLS
// listener: it sees a TLS record come back) and "TLS handshake failed. Please verify the broker
// supports TLS." (the reverse).
const NEEDS_TLS = /^Broker requires TLS/;
const NOT_TLS = /^TLS handshake failed\. Please verify|Client network socket disconnected before secure TLS connection/;
const isTlsError = (e: ErrorLike) => (typeof e.code === 'string' && TLS_CODES.test(e.code)) || NEEDS_TLS.test(text(e)) || NOT_TLS.test(text(e));

/** True when the client reports (anywhere in its chain of causes) that a topic does not exist. */
export function isUnknownTopic(err: unknown): boolean {
  return chain(err).some(isTopicError);
}

/** The cause of a failed send, as the gateway reports it: what kind and a reason naming it. */
export function describeKafkaFailure(err: unknown): { kind: KafkaFailureKind; reason: string } {
  const all = chain(err);
  const outer = all[0] === undefined ? String(err) : text(all[0]) || String(err);
  // The innermost message says what really happened (ECONNREFUSED, a certificate check); the outer one
  // what was being done.
  const leaves = all.filter((e) => !(Array.isArray(e.errors) && e.errors.length > 0) && e.cause === undefined);
  const root = leaves.map(text).find((m) => m !== '') ?? outer;
  const withRoot = (what: string, e?: ErrorLike) => {
    const detail = e === undefined ? root : [text(e), typeof e.serverErrorMessage === 'string' ? e.serverErrorMessage : ''].filter((m) => m !== '').join(': ');
    return `${what}: ${detail}${detail === outer ? '' : ` (${outer})`}`;
  };
  // A plaintext client with SASL at a TLS listener: the broker drops the connection at the first
  // bytes, which the client reports as a SASL handshake that found no mechanism (checked against the broker).
  const dropped = all.find((e) => e.code === 'PLT_KFK_AUTHENTICATION' && /suitable SASL mechanism/.test(text(e)) && chain(e.cause).some((c) => /Connection closed/.test(text(c))));
  if (dropped !== undefined) {
    return { kind: 'tls', reason: `the broker closed the connection before the SASL handshake: a TLS listener spoken to in plaintext? (set kafka.security.tls) (${outer})` };
  }
  const topic = all.find(isTopicError);
  // Kafka's own words for error 3, whichever way the client reported it.
  if (topic !== undefined) return { kind: 'topic', reason: withRoot('This server does not host this topic-partition', topic) };
  const auth = all.find(isAuthError);
  if (auth !== undefined) return { kind: 'auth', reason: withRoot('SASL authentication refused (check the user, the password or token, and the mechanism)', auth) };
  const tls = all.find(isTlsError);
  if (tls !== undefined) {
    const code = typeof tls.code === 'string' ? tls.code : '';
    const hint = NEEDS_TLS.test(text(tls))
      ? 'the listener requires TLS but the gateway speaks plaintext (set kafka.security.tls)'
      : /WRONG_VERSION_NUMBER|PACKET_LENGTH/.test(code) || NOT_TLS.test(text(tls))
      ? 'TLS handshake failed: the listener does not speak TLS (plaintext port?)'
      : /CERT|UNABLE_TO|SELF_SIGNED/.test(code)
        ? "TLS: the broker's certificate is not trusted (check kafka.security.tls.caFile)"
        : 'TLS handshake failed';
    return { kind: 'tls', reason: `${hint}: ${code === '' ? '' : `${code} `}${text(tls)} (${outer})` };
  }
  return { kind: 'network', reason: root === outer ? outer : `${root} (${outer})` };
}
