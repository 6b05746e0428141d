/**
 * The git commit a compiled binary was built from.
 *
 * Owns: one constant. In the source tree it is null and node/build_info.ts asks git instead;
 * tools/release.ts writes the commit here for the duration of `deno compile` and restores this
 * file afterwards.
 * Must never: be committed with a commit in it.
 */
export const BUILD_COMMIT: string | null = null;
