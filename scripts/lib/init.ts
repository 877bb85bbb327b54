/**
 * What `just init` still has to put into a stack's SOPS file: the keys the catalog can make
 * (`random bytes` generators) and the keys issued elsewhere that the stack requires (asked for).
 * Keys already holding a value are left alone, so a second `init` changes nothing.
 */
import { sopsEntriesFor, type CatalogEntry, type StackKind } from "../../components/secrets/catalog";
import type { FileKey } from "./sopsFile";

export interface InitPlan {
  /** Made here, never shown. */
  readonly generate: readonly CatalogEntry[];
  /** Issued elsewhere (a provider's dashboard), asked for with hidden input. */
  readonly ask: readonly CatalogEntry[];
}

/**
 * `passphraseFromSops`: `up` will read PULUMI_CONFIG_PASSPHRASE from the SOPS file (the local
 * backend, no passphrase in the environment: scripts/lib.sh passphrase_from_sops). Optional keys
 * are otherwise left out: each has a documented default without a value.
 */
export function initPlan(kind: StackKind, fileKeys: readonly FileKey[], passphraseFromSops: boolean): InitPlan {
  const missing = sopsEntriesFor(kind).filter((e) => !fileKeys.some((k) => k.key === e.key && k.hasValue));
  const wanted = missing.filter((e) => e.requiredFor.includes(kind) || (passphraseFromSops && e.key === "PULUMI_CONFIG_PASSPHRASE"));
  return {
    generate: wanted.filter((e) => e.generator?.kind === "random bytes"),
    ask: wanted.filter((e) => e.generator === undefined),
  };
}
