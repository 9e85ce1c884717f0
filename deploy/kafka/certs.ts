// Certificates for a local secured broker, made with openssl: a CA, the broker's certificate (for
// 127.0.0.1 and localhost) and a client certificate (mutual TLS), both signed by it, and a second,
// unrelated CA a client can be wrongly told to trust. For tests and local runs only: keys are not
// encrypted and live beside the broker's data.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, isEnoent, run, tail } from './child.ts';
import { kafkaErrors } from './errors.ts';

export interface TestCertificates {
  dir: string;
  /** PEM: the CA that signed the broker's and the client's certificates (a client's trust bundle). */
  caFile: string;
  /** PEM: a CA that signed nothing here (an unknown CA, for the refusal tests). */
  otherCaFile: string;
  /** PEM: the broker's key (PKCS#8) followed by its certificate, as Kafka's PEM keystore reads it. */
  brokerKeystoreFile: string;
  /** PEM: the client's certificate and key, for mutual TLS. */
  clientCertFile: string;
  clientKeyFile: string;
}

const DAYS = '30';

async function openssl(args: string[]): Promise<void> {
  const result = await run('openssl', args, { timeoutMs: 30_000 }).catch((err: unknown) => {
    throw kafkaErrors.create('KAFKA_CERTS_FAILED', isEnoent(err) ? 'openssl is not on PATH' : errorMessage(err), err);
  });
  if (result.code !== 0) throw kafkaErrors.create('KAFKA_CERTS_FAILED', `openssl ${args[0] ?? ''} exited with ${result.code ?? result.signal}:\n${tail(result.output)}`);
}

async function keyPair(path: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
}

async function selfSignedCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  await keyPair(key);
  await openssl(['req', '-x509', '-new', '-key', key, '-sha256', '-days', DAYS, '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', cert]);
  return { cert, key };
}

async function signed(dir: string, name: string, ca: { cert: string; key: string }, extensions: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  await keyPair(key);
  await openssl(['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr]);
  await writeFile(ext, extensions);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', DAYS, '-sha256', '-extfile', ext, '-out', cert]);
  return { cert, key };
}

/** Makes the CA, broker and client certificates in `dir` (created). */
export async function generateTestCertificates(dir: string): Promise<TestCertificates> {
  await mkdir(dir, { recursive: true });
  const ca = await selfSignedCa(dir, 'city-test-ca');
  const other = await selfSignedCa(dir, 'unrelated-ca');
  const broker = await signed(dir, 'broker', ca, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  const client = await signed(dir, 'client', ca, 'extendedKeyUsage=clientAuth\n');
  const brokerKeystoreFile = join(dir, 'broker-keystore.pem');
  await writeFile(brokerKeystoreFile, `${await readFile(broker.key, 'utf8')}${await readFile(broker.cert, 'utf8')}`, { mode: 0o600 });
  return { dir, caFile: ca.cert, otherCaFile: other.cert, brokerKeystoreFile, clientCertFile: client.cert, clientKeyFile: client.key };
}
