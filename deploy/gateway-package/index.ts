// The gateway's Debian package (build.ts) and the root filesystems it is booted in for tests (../rootfs/).
export { PACKAGE_ARCHES, PACKAGE_COMPRESSIONS, PACKAGE_NAME, NODE_VERSION, buildPackage, defaultVersion, type BuildPackageOptions, type BuiltPackage, type PackageArch, type PackageCompression } from './build.ts';
export { packageErrors } from './errors.ts';
export { ROOTFS_ARCHES, ROOTFS_PACKAGES, ROOTFS_SUITE, ensureBinfmt, ensureRootfs, extractRootfs, rootfsCacheDir, rootfsTarball, type RootfsArch } from '../rootfs/rootfs.ts';
export { bootRootfs, type BootOptions, type BootedRootfs, type ExecResult } from '../rootfs/nspawn.ts';
