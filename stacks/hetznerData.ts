/** The hetzner-data stack: the volume and addresses that survive every reprovision of the edge. */
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import { BifrostData } from "../components/bifrost/data";
import { checkSecrets, ConfigError, wrapSecrets, type Environment } from "../components/secrets/env";
import { checkHetznerDataSettings } from "../components/stack/settings";

export function hetznerData(env: Environment = process.env) {
  const config = new pulumi.Config("core");
  const secrets = checkSecrets("hetzner-data", env);
  const stack = checkHetznerDataSettings((k) => config.get(k));
  const problems = [...secrets.problems, ...stack.problems];
  if (problems.length > 0 || !stack.settings) throw new ConfigError("hetzner-data stack", problems);
  const settings = stack.settings;

  const provider = new hcloud.Provider("hcloud", { token: wrapSecrets(secrets.values).HCLOUD_TOKEN });
  const data = new BifrostData("bifrost", {
    name: settings.name,
    location: settings.location,
    volumeSizeGb: settings.volumeSizeGb,
    protect: !settings.allowDestroy,
    provider,
  });
  return {
    location: settings.location,
    volumeId: data.volumeId,
    ipv4Id: data.ipv4Id,
    ipv4Address: data.ipv4Address,
    ipv6Id: data.ipv6Id,
    ipv6Address: data.ipv6Address,
  };
}
