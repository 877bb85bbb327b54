/**
 * The stand-in for OpenBao's CSI provider's parameter parser refuses what
 * openbao-csi-provider v2.0.2 internal/config/config.go refuses, with its messages.
 */
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { openbaoProviderParameters } from "../helpers/openbaoCsiProvider";

const objects = stringify([{ objectName: "A", secretPath: "secret/data/x/A", secretKey: "value" }]);

describe("OpenBao's CSI provider parameters (openbao-csi-provider v2.0.2)", () => {
  it("reads each setting under the bao, openbao or vault prefix, and roleName bare", () => {
    expect(openbaoProviderParameters({ roleName: "r", vaultAddress: "http://v", vaultAuthMountPath: "kubernetes", objects })).toMatchObject({ roleName: "r", address: "http://v", authMountPath: "kubernetes" });
    expect(openbaoProviderParameters({ baoRoleName: "r", openbaoAddress: "http://o", objects })).toMatchObject({ roleName: "r", address: "http://o", authMountPath: "" });
  });

  it.each([
    [{ objects }, "missing 'roleName' in SecretProviderClass definition"],
    [{ roleName: "r" }, "no secrets configured - the provider will not read any secret material"],
    [{ roleName: "r", objects: stringify([{ objectName: "A" }, { objectName: "A" }]) }, "each `objectName` within a SecretProviderClass must be unique, but the following keys were duplicated: A"],
    [{ roleName: "r", objects, openbaoKubernetesMountPath: "k", openbaoAuthMountPath: "a" }, "cannot set both openbaoKubernetesMountPath and openbaoAuthMountPath"],
  ])("refuses %j", (params, error) => {
    expect(openbaoProviderParameters(params as Record<string, string>)).toEqual({ error });
  });
});
