/** Entry point: the stack's `core:kind` picks which program runs. */
import * as pulumi from "@pulumi/pulumi";
import { cluster } from "./stacks/cluster";
import { hetzner } from "./stacks/hetzner";
import { hetznerData } from "./stacks/hetznerData";

type Outputs = Record<string, unknown>;

const programs: Record<string, () => Outputs | Promise<Outputs>> = {
  hetzner: () => hetzner(),
  "hetzner-data": () => hetznerData(),
  cluster: () => cluster(),
};

async function run(): Promise<Outputs> {
  const kind = new pulumi.Config("core").get("kind");
  const program = kind === undefined ? undefined : programs[kind];
  if (!program) {
    throw new pulumi.RunError(
      `core:kind ${kind === undefined ? "is not set" : `"${kind}" names no stack program`} in stacks/Pulumi.${pulumi.getStack()}.yaml; ` +
        `expected one of: ${Object.keys(programs).join(", ")}`,
    );
  }
  return program();
}

// Pulumi's Node runtime calls an exported function and awaits what it returns
// (@pulumi/pulumi cmd/run/run.js: "If the exported value was itself a Function…").
export = run;
