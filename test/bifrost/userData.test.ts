/** The host key added to the cloud-init template: where it goes and what the template may not do. */
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { knownHostsLines, userDataWithHostKey } from "../../components/bifrost/userData";

const pair = { privateKeyOpenssh: "-----BEGIN OPENSSH PRIVATE KEY-----\nQUJD\n-----END OPENSSH PRIVATE KEY-----\n", publicKeyOpenssh: "ssh-ed25519 QUJDRA==\n" };
const template = "#cloud-config\n# why\npackages:\n  - jq\n";

describe("userDataWithHostKey", () => {
  it("keeps the header and the template, and adds the pair as cloud-init's ed25519 ssh_keys", () => {
    const out = userDataWithHostKey(template, pair);
    expect(out.startsWith("#cloud-config\n# why\n")).toBe(true);
    expect(YAML.parse(out)).toEqual({
      packages: ["jq"],
      ssh_keys: { ed25519_private: pair.privateKeyOpenssh, ed25519_public: "ssh-ed25519 QUJDRA==" },
    });
  });

  it("refuses a template without the header, and one that sets ssh_keys itself", () => {
    expect(() => userDataWithHostKey("packages: []\n", pair)).toThrow(/#cloud-config header/);
    expect(() => userDataWithHostKey(`${template}ssh_keys: {}\n`, pair)).toThrow(/sets ssh_keys itself/);
  });
});

describe("knownHostsLines", () => {
  it("gives one known_hosts line per address with the key's type and blob only", () => {
    expect(knownHostsLines(["203.0.113.7", "2001:db8::1"], "ssh-ed25519 QUJDRA== comment\n")).toBe(
      "203.0.113.7 ssh-ed25519 QUJDRA==\n2001:db8::1 ssh-ed25519 QUJDRA==\n",
    );
  });
});
