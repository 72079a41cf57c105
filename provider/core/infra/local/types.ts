/** Local nodes: network namespace + own IP + copy-on-write /etc /usr /var /opt /root /home + private /tmp + own sshd. */
export interface SudoUserSpec {
  name: string;
  /** Password for login and for sudo. Without it the user logs in with the node key only. */
  password?: string;
  /** true: `NOPASSWD: ALL`; false: sudo asks for the password (default true). */
  nopasswd?: boolean;
}

export interface CreateLocalNodesOptions {
  count: number;
  /** Node names are `<prefix>-1`, `<prefix>-2`, ...; also the netns names. Letters, digits, dashes; at most 12 chars. */
  prefix: string;
  /** e.g. "10.213.7.0/24"; chosen automatically (free, derived from the prefix) when unset. */
  subnet?: string;
  sudoUser?: SudoUserSpec;
  /** Root password set inside each node (for password-login tests). */
  rootPassword?: string;
  /** Start sshd (default true). False creates everything but sshd; `startSshd(node)` starts it later. */
  startSshd?: boolean;
}

export interface LocalNode {
  name: string;
  prefix: string;
  ip: string;
  port: number;
  /** Private key (ed25519, no passphrase) accepted for root and the sudo user. */
  keyPath: string;
  /** OpenSSH public host key line of this node's sshd. */
  hostKeyPub: string;
  sshdPid: number | null;
  /** pid of the process holding the node's mount namespace (a sleeper), so sshd can be restarted. */
  holderPid: number;
  netns: string;
  bridge: string;
  subnet: string;
  stateDir: string;
  sudoUser?: SudoUserSpec;
  rootPassword?: string;
}
