/**
 * The server's cloud-init user data: the shipped template plus the host key the stack made, so
 * the first SSH session already knows whom it talks to.
 */
import YAML from "yaml";

/** An Ed25519 key pair as @pulumi/tls's PrivateKey gives it (OpenSSH encodings). */
export interface HostKeyPair {
  readonly privateKeyOpenssh: string;
  readonly publicKeyOpenssh: string;
}

/**
 * The template with `ssh_keys` set to the pair. cloud-init's ssh module, given `ssh_keys`,
 * deletes the image's host keys (`ssh_deletekeys` defaults to true), writes only the keys
 * listed and generates none (cloud-init 25.1 cloudinit/config/cc_ssh.py, handle). The
 * result holds a private key: callers pass it on as a secret.
 */
export function userDataWithHostKey(template: string, hostKey: HostKeyPair): string {
  if (!template.startsWith("#cloud-config\n")) throw new Error("cloud-init user data must start with the #cloud-config header");
  const doc = YAML.parseDocument(template);
  if (doc.has("ssh_keys")) throw new Error("the user data template sets ssh_keys itself; the stack owns the host key");
  doc.set("ssh_keys", { ed25519_private: hostKey.privateKeyOpenssh, ed25519_public: hostKey.publicKeyOpenssh.trim() });
  // The document keeps its header comment, so cloud-init still sees #cloud-config first.
  return doc.toString({ lineWidth: 0 });
}

/** known_hosts lines for the addresses the edge answers on, for the operator's own ssh. */
export function knownHostsLines(addresses: readonly string[], publicKeyOpenssh: string): string {
  const key = publicKeyOpenssh.trim().split(/\s+/).slice(0, 2).join(" ");
  return addresses.map((address) => `${address} ${key}\n`).join("");
}
