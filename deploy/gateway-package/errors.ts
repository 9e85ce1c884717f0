// Error catalog of the gateway package build and the root filesystems it is booted in.
import { defineErrors } from '@city/protocol';

export const packageErrors = defineErrors('PKG', {
  PKG_USAGE: { message: 'invalid command line', canRetry: false, usage: true, action: "see the command's --help (npm run package:gateway, npm run rootfs)" },
  PKG_TOOL_MISSING: {
    message: 'a tool the build needs is missing',
    canRetry: false,
    action: 'install what the message names (apt-get install mmdebstrap systemd-container qemu-user-static binfmt-support; dpkg-deb comes with dpkg)',
  },
  PKG_TOOL_FAILED: {
    message: 'a build step failed',
    canRetry: true,
    action: 'read the tool output at the end of the message; a network step (npm pack, mmdebstrap) can be run again',
  },
});
