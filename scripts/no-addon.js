// Runs when `node-gyp-build` could neither find a prebuild nor compile (no C compiler).
// Installing must not fail: clone() still works through Node's own fs.copyFile, and
// every feature that needs the addon says so with ERR_CLONEFILE_NATIVE_MISSING.
console.warn(
  'clonefile: the native addon was not built (no prebuild for this platform and no C compiler).\n' +
    'clonefile: clone() will use fs.copyFile; cloneRange, probe, cloneTree, usage and fd sources need the addon.\n' +
    'clonefile: install a C toolchain (python3, make, a C compiler) and run `npm rebuild clonefile`.',
)
