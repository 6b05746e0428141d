/**
 * Start-up failures in the operator's terms: an OS error ("Address already in use (os error 98)",
 * "File exists (os error 17)") rewritten to name the flag that caused it and what to do.
 *
 * Owns: the wording of those messages. Must never: hide the original reason (it stays in the
 * message and as `cause`), or rewrite an error it does not recognise beyond prefixing the flag.
 */

/** `--listen` or `--rpc` could not bind `address` ("host:port"). */
export function bindError(flag: "--listen" | "--rpc", address: string, e: unknown): Error {
  const port = address.slice(address.lastIndexOf(":") + 1);
  const reason = (e instanceof Error ? e : null)?.cause ?? e;
  let why: string;
  if (reason instanceof Deno.errors.AddrInUse) {
    why = "address already in use: another program, or another timenode, listens there " +
      `(see \`ss -ltnp 'sport = :${port}'\`); stop it or give ${flag} another port`;
  } else if (reason instanceof Deno.errors.AddrNotAvailable) {
    why = "no network interface of this machine has that address; give one of its own " +
      `addresses${flag === "--listen" ? ", or 0.0.0.0 for all of them" : ""}`;
  } else if (reason instanceof Deno.errors.PermissionDenied) {
    why = "permission denied: ports below 1024 need privileges the node should not have; " +
      "use a higher port";
  } else {
    why = message(e);
  }
  return new Error(`${flag} ${address}: ${why}`, { cause: e });
}

/**
 * The data dir could not be created or opened. Errors that are not the file system's (the
 * data dir lock held by another process) already say what to do and come back unchanged.
 */
export function dataDirError(dataDir: string, e: unknown): Error {
  let why: string;
  if (e instanceof Deno.errors.AlreadyExists) {
    why = "exists and is not a directory; give --data-dir a directory";
  } else if (e instanceof Deno.errors.NotADirectory) {
    why = "a part of the path is a file, not a directory; give --data-dir a directory";
  } else if (e instanceof Deno.errors.PermissionDenied) {
    why = "permission denied: the node's user must be able to create and write it " +
      "(for example `chown -R <user>` it), or give --data-dir a directory it owns";
  } else if (isOsError(e)) {
    why = `cannot create or open it: ${message(e)}`;
  } else {
    return e instanceof Error ? e : new Error(String(e));
  }
  return new Error(`--data-dir ${dataDir}: ${why}`, { cause: e });
}

/** One of the errors Deno raises for a failed system call (`Deno.errors.*`). */
function isOsError(e: unknown): boolean {
  return Object.values(Deno.errors).some((kind) => e instanceof kind);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
