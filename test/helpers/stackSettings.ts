/**
 * The fewest hetzner stack settings the checks accept, as `core:` config keys with lists as
 * JSON text (how `pulumi.Config.get` hands them over). Names under example.test, an address from
 * a documentation range, a key that is no key.
 */
export const minimalHetznerConfig: Readonly<Record<string, string>> = {
  "core:domain": "edge.example.test",
  "core:cloudflareZone": "example.test",
  "core:acmeEmail": "ops@example.test",
  "core:netbirdOwnerEmail": "owner@example.test",
  "core:serverType": "cx23",
  "core:image": "debian-13",
  "core:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKkkkkkkkkkkk operator",
  "core:operatorSshSources": JSON.stringify(["198.51.100.7/32"]),
  "core:dataStack": "organization/core/hetzner-data",
};
