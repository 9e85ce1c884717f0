// Where the sink lives in its image, its user, and the defaults its environment carries: shared by the
// image builder and the AWS app, which runs the image on Fargate.
export const IMAGE = {
  name: 'localhost/city-sink',
  appDir: '/opt/city-sink',
  user: 'city-sink',
  uid: 10001,
  dataDir: '/data',
  healthPort: 8080,
} as const;

/** The image's HEALTHCHECK command (exec form). */
export const HEALTHCHECK_COMMAND = [`${IMAGE.appDir}/bin/node`, `${IMAGE.appDir}/app/healthcheck.mjs`] as const;
