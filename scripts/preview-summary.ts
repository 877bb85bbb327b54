/**
 * Reads the document `pulumi preview --json` prints (stdin, never a file), lists the steps
 * that change something (stderr) and prints the review summary (stdout): plain text, or
 * Markdown for a pull request with --markdown. Usage: preview-summary.ts <stack> [--markdown]
 */
import { readFileSync } from "node:fs";
import { type PreviewDigest, renderMarkdown, renderText, summarize } from "./lib/previewSummary";

const symbols: Record<string, string> = { create: "+", update: "~", delete: "-", replace: "+-", "create-replacement": "++", "delete-replaced": "--" };

function main(stack: string | undefined, format: string | undefined): number {
  if (stack === undefined || (format !== undefined && format !== "--markdown")) {
    console.error("usage: preview-summary.ts <stack> [--markdown]");
    return 2;
  }
  const input = readFileSync(0, "utf8");
  let digest: PreviewDigest;
  try {
    digest = JSON.parse(input) as PreviewDigest;
  } catch {
    console.error("pulumi preview --json gave no JSON document; nothing to summarise");
    return 1;
  }
  for (const step of digest.steps ?? []) {
    if (step.op === "same") continue;
    const why = step.replaceReasons?.length ? step.replaceReasons : step.diffReasons ?? [];
    console.error(`  ${(symbols[step.op] ?? step.op).padEnd(3)}${step.op.padEnd(19)}${step.urn.slice(step.urn.lastIndexOf("::") + 2)} (${step.urn.split("::")[2]?.split("$").pop()})${why.length ? ` [${why.join(", ")}]` : ""}`);
  }
  const summary = summarize(digest);
  process.stdout.write(format === "--markdown" ? renderMarkdown(summary, stack) : renderText(summary, stack));
  return 0;
}

process.exitCode = main(process.argv[2], process.argv[3]);
