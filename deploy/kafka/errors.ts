// Error catalog of the Kafka launcher: every failure of fetching, starting, stopping or preparing a
// broker has one code here, with whether running the same thing again can help and what to do.
import { defineErrors } from '@city/protocol';

export const kafkaErrors = defineErrors('KAFKA', {
  KAFKA_USAGE: {
    message: 'invalid command line',
    canRetry: false,
    usage: true,
    action: 'see npm run kafka -- --help',
  },
  KAFKA_INVALID_OPTION: {
    message: 'invalid launcher option',
    canRetry: false,
    usage: true,
    action: 'fix the option or topic spec the message names',
  },
  KAFKA_MAVEN_MISSING: {
    message: 'Apache Maven (mvn) is not on PATH',
    canRetry: false,
    action: 'install Maven 3.8 or newer; it fetches the broker jars once into the cache',
  },
  KAFKA_FETCH_FAILED: {
    message: 'fetching the Kafka jars with Maven failed',
    canRetry: true,
    action: 'check the network and Maven settings (the message ends with Maven output); run npm run kafka -- fetch again',
  },
  KAFKA_FETCH_INCOMPLETE: {
    message: 'Maven finished but the broker jar is missing',
    canRetry: false,
    action: 'check deploy/kafka/pom.xml and the Kafka version asked for (--version)',
  },
  KAFKA_JAVA_MISSING: {
    message: 'no Java runtime found',
    canRetry: false,
    action: 'install a Java 17+ runtime or set JAVA_HOME',
  },
  KAFKA_FORMAT_FAILED: {
    message: 'formatting the broker storage failed',
    canRetry: false,
    action: 'read the StorageTool output in the message; with --data-dir, check the folder (or start with an empty one)',
  },
  KAFKA_FORMAT_TIMEOUT: {
    message: 'formatting the broker storage timed out',
    canRetry: true,
    action: 'the machine is busy or slow; run it again',
  },
  KAFKA_START_TIMEOUT: {
    message: 'the broker was not serving in time',
    canRetry: true,
    action: 'the machine is busy or slow; run it again, or read the broker log the message names',
  },
  KAFKA_EXITED: {
    message: 'the broker process exited',
    canRetry: false,
    action: 'read the broker log the message names (a port in use, a data dir of another cluster, too little memory for --heap-mb)',
  },
  KAFKA_ALREADY_STARTED: {
    message: 'the broker is already started',
    canRetry: false,
    action: 'start one broker per launcher; stop it before starting another',
  },
  KAFKA_STOPPED: {
    message: 'the broker is stopping or stopped',
    canRetry: false,
    action: 'start a new broker (npm run kafka -- start)',
  },
  KAFKA_STOP_TIMEOUT: {
    message: 'the broker did not stop in time',
    canRetry: false,
    action: 'it was killed; with --data-dir the next start recovers its logs (nothing committed is lost)',
  },
  KAFKA_CERTS_FAILED: {
    message: 'generating the secured listener\'s certificates failed',
    canRetry: false,
    action: 'install openssl (the message ends with its output), or start without --secure',
  },
  KAFKA_TOPIC_MISMATCH: {
    message: 'a topic exists with fewer partitions than asked for',
    canRetry: false,
    action: 'raise its partitions on purpose (kafka-topics --alter) or use another topic name (--topic-suffix)',
  },
  KAFKA_TOPICS_TIMEOUT: {
    message: 'topics were not ready in time',
    canRetry: true,
    action: 'check that the brokers are up and reachable; run the topics command again',
  },
});

export type KafkaErrorCode = (typeof kafkaErrors.codes)[number];
