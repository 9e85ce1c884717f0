// Error catalog of the sink image builder (npm run image): every failure of making the base, bundling
// the sink or building the image has one code here.
import { defineErrors } from '@city/protocol';

export const imageErrors = defineErrors('IMAGE', {
  IMAGE_USAGE: { message: 'invalid command line', canRetry: false, usage: true, action: 'see npm run image -- --help' },
  IMAGE_TOOL_MISSING: {
    message: 'a tool the image build needs is missing',
    canRetry: false,
    action: 'install it (apt-get install podman mmdebstrap); the message names the tool',
  },
  IMAGE_BASE: {
    message: 'making the Debian base failed',
    canRetry: true,
    action: 'mmdebstrap needs a Debian mirror and root; the message ends with its output (the cache is left as it was)',
  },
  IMAGE_BUNDLE: { message: 'bundling the sink failed', canRetry: false, action: 'fix the build error esbuild names (npx tsc -b shows the same in context)' },
  IMAGE_BUILD: { message: 'podman build failed', canRetry: true, action: "read podman's output at the end of the message; the build context is kept when --keep-context is given" },
});

export type ImageErrorCode = (typeof imageErrors.codes)[number];
