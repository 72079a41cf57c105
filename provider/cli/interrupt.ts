/**
 * One line for a long command stopped by SIGINT or SIGTERM: which command, and what it leaves.
 * The process still dies of the signal (a shell sees 130 / 143), so scripts and `make` stop as
 * they would for any interrupted program.
 *
 * The cleanup itself is not done here: temp entries a command registered (core/temp-owner's
 * removeOnSignal: work directories, store temp files, build and pull leases, save's temp archive,
 * load's staging) are removed by that handler, which then re-raises the signal. Each text below
 * says only what that cleanup and the command's own commit order guarantee.
 */

/** What each long command leaves when interrupted, by command name. */
const LEFT_BEHIND: Readonly<Record<string, string>> = {
  build:
    "its work directory was removed; the -t name is set only as the build's last step, so it is unchanged unless the build got that far; layers already stored stay unreferenced until `sealer prune`",
  pull: "the image is named only once all its blobs are stored, so no image was added unless the pull got that far; blobs already downloaded stay (the next pull reuses them, `sealer prune` frees them), and a partly downloaded blob stays in the store's tmp/ so the next pull resumes it",
  push: "the registry's tag is written only after every blob and manifest, so it is unchanged unless the push got that far; blobs already uploaded stay on the registry and the next push skips them",
  save: "the unfinished archive was removed; the -o file is replaced only by a complete archive, so it is as it was unless the save got that far",
  load: "the staging directory was removed; the images are named in one index write at the end, so none was added unless the load got that far; blobs already moved into the store stay unreferenced until `sealer prune`",
};

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * While `command` runs, SIGINT / SIGTERM print "sealer: interrupted (SIG…) during <command>; …"
 * and end the process by that signal. Does nothing for commands not listed above. `beforeLine`
 * runs first (the CLI stops its progress bars, so the line is not drawn into one). Returns what
 * removes the handlers.
 */
export function reportInterruption(command: string, beforeLine: () => void = () => undefined): () => void {
  const left = LEFT_BEHIND[command];
  if (left === undefined) return () => undefined;
  const off = () => {
    for (const s of SIGNALS) process.off(s, onSignal);
  };
  function onSignal(sig: NodeJS.Signals): void {
    off();
    beforeLine();
    // Written at once (stderr is synchronous on Linux for files, pipes and terminals): the
    // process ends within this event.
    process.stderr.write(`sealer: interrupted (${sig}) during ${command}; ${left}\n`);
    // With this handler gone, a registered temp-entry handler (temp-owner) still runs in this
    // same emit: it removes the entries and re-raises the signal once no listener is left. If
    // none is left now (none registered, or it ran before this one while this listener still
    // caught its re-raise), the signal is raised here, and its default action ends the process.
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  }
  for (const s of SIGNALS) process.on(s, onSignal);
  return off;
}
