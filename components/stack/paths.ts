import { resolve } from "node:path";

/** Project root: the program reads its bundle and cloud-init from here, wherever Pulumi runs it. */
export const projectRoot = resolve(__dirname, "..", "..");
export const bundleDir = resolve(projectRoot, "cloud", "bifrost");
export const cloudInitFile = resolve(projectRoot, "cloud", "cloud-init", "user-data.yaml");
