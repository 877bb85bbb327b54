/** Entry point: the stack's `core:kind` picks which program runs. */
import * as pulumi from "@pulumi/pulumi";
import { hetzner } from "./stacks/hetzner";
import { hetznerData } from "./stacks/hetznerData";

const programs: Record<string, () => Record<string, unknown>> = {
  hetzner: () => hetzner(),
  "hetzner-data": () => hetznerData(),
};

function run(): Record<string, unknown> {
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

export = run();
