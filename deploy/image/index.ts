// Public entry of the sink image builder: build it, inspect and export it, its error catalog.
export { buildImage, ensureBaseTarball, exportImage, imageBaseCacheDir, inspectImage, type BuildImageOptions, type BuiltImage, type ImageConfig } from './build.ts';
export { flagsFromEnv, sinkArgs } from './env.ts';
export { imageErrors, type ImageErrorCode } from './errors.ts';
export { HEALTHCHECK_COMMAND, IMAGE } from './layout.ts';
