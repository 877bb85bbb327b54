/**
 * Authentik's blueprint YAML tags (authentik/blueprints/v1/common.py), read as {tag, args}
 * nodes rather than resolved while parsing: the whole document, anchors and aliases included,
 * is built first (an alias inside a tag's sequence needs the document), and the caller then
 * resolves the tags its own way (the docker double as the importer does, the conformance test
 * with placeholders for database lookups).
 */
import { YAMLSeq, type CollectionTag, type ScalarTag } from "yaml";

export type Tagged = { tag: string; args: unknown[] };
export const isTagged = (v: unknown): v is Tagged => typeof v === "object" && v !== null && "tag" in v && "args" in v;

/** Custom tags for the yaml package: each scalar tag and each sequence tag named, as {tag, args}. */
export function taggedNodes(scalars: readonly string[], sequences: readonly string[]): (ScalarTag | CollectionTag)[] {
  const scalar = (tag: string): ScalarTag => ({ tag, resolve: (s: string) => ({ tag, args: [s] }) }) as unknown as ScalarTag;
  const seq = (tag: string): CollectionTag => {
    class TaggedSeq extends YAMLSeq {
      static tag = tag;
      // A tag node is {tag, args}, not the array a plain YAMLSeq gives.
      toJSON(_?: unknown, ctx?: Parameters<YAMLSeq["toJSON"]>[1]): any {
        const node: Tagged = { tag, args: super.toJSON(_, ctx) };
        return node;
      }
    }
    return { tag, collection: "seq", nodeClass: TaggedSeq, resolve: (node) => Object.assign(new TaggedSeq(), node) } as CollectionTag;
  };
  return [...scalars.map(scalar), ...sequences.map(seq)];
}
