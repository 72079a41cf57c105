/**
 * The typed form of a Kubefile. The parser produces these; the builder
 * consumes them. Every instruction carries the 1-based line where it starts, so any later error
 * (context checks, build failures) can name `Kubefile:LINE`.
 */
export interface Loc {
  file: string;
  /** 1-based line where the instruction starts (its first physical line). */
  line: number;
}

export type Instruction =
  /** `image` may be "scratch". */
  | { kind: "FROM"; loc: Loc; image: string }
  /** After ARG/ENV expansion; `${ARCH}` is left in sources for the builder to substitute per platform. */
  | { kind: "COPY" | "ADD"; loc: Loc; sources: string[]; dest: string }
  /** Shell form; the exec (JSON array) form is joined into a safely quoted shell command. */
  | { kind: "RUN"; loc: Loc; command: string }
  /** Legacy: each CMD appends a launch command run on master0 after install. */
  | { kind: "CMD"; loc: Loc; command: string }
  | { kind: "CMDS"; loc: Loc; cmds: string[] }
  /** "local://path" becomes the context-relative path; "https://..." is kept as the URL. */
  | { kind: "APP"; loc: Loc; name: string; sources: string[] }
  | { kind: "APPCMDS"; loc: Loc; name: string; cmds: string[] }
  | { kind: "APPENV"; loc: Loc; name: string; env: Record<string, string> }
  | { kind: "LAUNCH"; loc: Loc; apps: string[] }
  /** An APP plus the label cluster.alpha.sealer.io/kube-cni-<name> (kube-csi-<name>). */
  | { kind: "CNI" | "CSI"; loc: Loc; name: string; sources: string[] }
  | { kind: "KUBEVERSION"; loc: Loc; range: string }
  /** One per declared name (`ARG a=1 b=2` gives two). `value` is the default written in the Kubefile. */
  | { kind: "ARG"; loc: Loc; name: string; value?: string }
  | { kind: "ENV"; loc: Loc; env: Record<string, string> }
  | { kind: "LABEL"; loc: Loc; labels: Record<string, string> }
  | { kind: "MAINTAINER"; loc: Loc; value: string };

export type InstructionKind = Instruction["kind"];

export interface Kubefile {
  file: string;
  /** In file order. */
  instructions: Instruction[];
  /** Resolved ARG values (build args override defaults; a declared ARG without a value is ""). */
  args: Record<string, string>;
  /** The ENV values in effect after the last instruction (later ENV overrides earlier). */
  env: Record<string, string>;
}

/** The instructions a Kubefile may use. */
export const INSTRUCTION_KINDS: readonly InstructionKind[] = [
  "FROM",
  "COPY",
  "ADD",
  "RUN",
  "CMD",
  "CMDS",
  "APP",
  "APPCMDS",
  "APPENV",
  "LAUNCH",
  "CNI",
  "CSI",
  "KUBEVERSION",
  "ARG",
  "ENV",
  "LABEL",
  "MAINTAINER",
];

/** The variable the builder substitutes per platform in COPY/ADD/APP sources. */
export const ARCH_VAR = "ARCH";
export const ARCH_PLACEHOLDER = "${ARCH}";
