/**
 * Authentik's flow planner as far as who may start a flow and which stages they meet, over
 * what a fresh install ships: Authentik's own default blueprints (vendored at
 * test/fixtures/authentik/blueprints/, SOURCE.md there names tag and path) with this project's
 * blueprint applied on top, as the worker and the bootstrap apply them.
 *
 * Upstream (goauthentik/authentik 2026.5.0-rc1, addbf5a2f, read in the fork SAY-5/authentik):
 * - flows/planner.py FlowPlanner.plan: the flow's own policy bindings are evaluated first; when
 *   they do not pass, FlowNonApplicableException, with the policies' messages ("Flow does not
 *   apply to current user." when none);
 * - policies/engine.py PolicyEngine: `any` passes when one result passes, `all` when every one
 *   does; no bindings pass (empty_result True); policies/models.py PolicyBindingModel
 *   policy_engine_mode defaults to `any`;
 * - policies/process.py PolicyProcess.execute: negate inverts a result, but a policy that
 *   raises yields the binding's failure_result as it is (default False);
 * - flows/models.py FlowStageBinding: stages run in `order`; a binding with
 *   re_evaluate_policies is decided when reached, with the identified user as pending_user.
 * Expression policies run as Authentik runs them (test/conformance/authentik_expression.py).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { repoRoot } from "./harness";
import { resolveBlueprint, type BlueprintEntry } from "./authentik";

const fixtures = path.join(repoRoot, "test/fixtures/authentik/blueprints/default");
const ourBlueprint = path.join(repoRoot, "cloud/bifrost/authentik/blueprints/netbird.yaml");
const expressionRunner = path.join(repoRoot, "test/conformance/authentik_expression.py");

/** A policy bound to a flow or to a stage binding, as the engine runs it. */
interface Bound {
  policy: string;
  expression: string;
  order: number;
  negate: boolean;
  failureResult: boolean;
}

interface StageBinding {
  stage: string;
  order: number;
  policies: Bound[];
}

interface Flow {
  mode: "all" | "any";
  policies: Bound[];
  stages: StageBinding[];
}

/** What GitHub's API answers the policies here (authentik_expression.py's stand-in). */
export interface GitHubAnswers {
  token?: string;
  memberships?: Record<string, string>;
}

export interface PolicyOutcome {
  passing: boolean;
  messages: string[];
}

const truthy = (v: unknown) => !(v === "" || v === null || v === undefined || v === false || v === 0);
const applies = (e: BlueprintEntry) => (e.conditions ?? []).every(truthy);
const keyOf = (v: unknown) => (v as { __keyOf?: string } | null)?.__keyOf;
/** The slug a `!Find [authentik_flows.flow, [slug, X]]` marker names. */
const foundFlow = (v: unknown): string | undefined => {
  const find = (v as { __find?: [string, [string, string]] } | null)?.__find;
  return find && find[0] === "authentik_flows.flow" && find[1][0] === "slug" ? find[1][1] : undefined;
};
/** The flow slug and stage name a `!Find [authentik_flows.flowstagebinding, [target, !Find flow], [stage, !Find stage]]` marker names. */
const foundStageBinding = (v: unknown): { flow?: string; stage?: string } | undefined => {
  const find = (v as { __find?: [string, ...[string, unknown][]] } | null)?.__find;
  if (!find || find[0] !== "authentik_flows.flowstagebinding") return undefined;
  const fields = Object.fromEntries(find.slice(1) as [string, unknown][]);
  const stage = (fields.stage as { __find?: [string, [string, string]] } | undefined)?.__find;
  return { flow: foundFlow(fields.target), stage: stage?.[1][0] === "name" ? stage[1][1] : undefined };
};
const attrsOf = (e: BlueprintEntry) => ({ ...(e.identifiers ?? {}), ...(e.attrs ?? {}) }) as Record<string, unknown>;

/** The flow of slug `slug` after the worker applied its default blueprint and the bootstrap ours (with `env`). */
export function loadFlow(slug: string, env: Record<string, string>): Flow {
  const file = fs.readdirSync(fixtures).find((f) => {
    const bp = resolveBlueprint(fs.readFileSync(path.join(fixtures, f), "utf8"), {});
    return bp.entries.some((e) => e.model === "authentik_flows.flow" && e.identifiers?.slug === slug);
  });
  if (!file) throw new Error(`authentik flows: no vendored default blueprint makes flow ${slug}`);
  const upstream = resolveBlueprint(fs.readFileSync(path.join(fixtures, file), "utf8"), {}).entries;
  const ours = resolveBlueprint(fs.readFileSync(ourBlueprint, "utf8"), env).entries.filter(applies);
  const flowEntry = upstream.find((e) => e.model === "authentik_flows.flow")!;
  const policyById = new Map<string, { name: string; expression: string }>();
  for (const e of [...upstream, ...ours]) {
    if (!e.id) continue;
    if (e.model === "authentik_policies_expression.expressionpolicy") policyById.set(e.id, { name: String(attrsOf(e).name), expression: String(attrsOf(e).expression) });
    // A reputation policy passes while the summed score is at or below its threshold
    // (policies/reputation/models.py ReputationPolicy.passes); a fresh install has no scores (0).
    if (e.model === "authentik_policies_reputation.reputationpolicy")
      policyById.set(e.id, { name: String(attrsOf(e).name), expression: `return 0 <= ${Number(attrsOf(e).threshold ?? -5)}` });
  }
  const isFlow = (target: unknown) => keyOf(target) === flowEntry.id || foundFlow(target) === slug;
  const bound = (target: (t: unknown) => boolean, entries: BlueprintEntry[]): Bound[] =>
    entries
      .filter((e) => e.model === "authentik_policies.policybinding" && target(attrsOf(e).target))
      .map((e) => {
        const a = attrsOf(e);
        const policy = policyById.get(keyOf(a.policy) ?? "");
        if (!policy) throw new Error(`authentik flows: a binding on ${slug} names no expression policy the double knows`);
        return { policy: policy.name, expression: policy.expression, order: Number(a.order ?? 0), negate: a.negate === true, failureResult: a.failure_result === true };
      });
  const all = [...upstream, ...ours];
  const stages = all
    .filter((e) => e.model === "authentik_flows.flowstagebinding" && isFlow(attrsOf(e).target))
    .map((e) => {
      const a = attrsOf(e);
      const stageId = keyOf(a.stage);
      const stageEntry = all.find((s) => s.id === stageId);
      const stage = String(stageEntry ? attrsOf(stageEntry).name : stageId);
      const isThisBinding = (t: unknown) => (!!e.id && keyOf(t) === e.id) || (foundStageBinding(t)?.flow === slug && foundStageBinding(t)?.stage === stage);
      return { stage, order: Number(a.order ?? 0), policies: bound(isThisBinding, all) };
    })
    .sort((a, b) => a.order - b.order);
  // Ours sets the mode on the existing flow; else the file's, else the model's default.
  const modeEntry = [...ours].reverse().find((e) => e.model === "authentik_flows.flow" && e.identifiers?.slug === slug);
  const mode = (attrsOf(modeEntry ?? flowEntry).policy_engine_mode ?? "any") as "all" | "any";
  return { mode, policies: bound(isFlow, all), stages };
}

function evaluate(b: Bound, context: Record<string, unknown>, github: GitHubAnswers): PolicyOutcome {
  const run = spawnSync("python3", [expressionRunner], { input: JSON.stringify({ expression: b.expression, context, github }), encoding: "utf8" });
  if (run.status !== 0) throw new Error(`authentik flows: the expression runner failed: ${run.stderr}`);
  const result = JSON.parse(run.stdout) as { passing: boolean; raised: boolean; messages: string[] };
  return { passing: result.raised ? b.failureResult : b.negate ? !result.passing : result.passing, messages: result.messages };
}

function engine(mode: "all" | "any", bindings: Bound[], context: Record<string, unknown>, github: GitHubAnswers): PolicyOutcome {
  if (bindings.length === 0) return { passing: true, messages: [] };
  const results = [...bindings].sort((a, b) => a.order - b.order).map((b) => evaluate(b, context, github));
  const passing = mode === "all" ? results.every((r) => r.passing) : results.some((r) => r.passing);
  return { passing, messages: results.flatMap((r) => r.messages) };
}

/** Whether the flow starts for this plan context: FlowPlanner's check of the flow's own policies. */
export function planFlow(slug: string, env: Record<string, string>, context: Record<string, unknown>, github: GitHubAnswers = {}): PolicyOutcome {
  const flow = loadFlow(slug, env);
  const outcome = engine(flow.mode, flow.policies, context, github);
  return outcome.passing || outcome.messages.length ? outcome : { passing: false, messages: ["Flow does not apply to current user."] };
}

/** The stages the flow runs for this context, in order: each binding's policies decided as it is reached (a binding's own mode is `any`). */
export function stagesMet(slug: string, env: Record<string, string>, context: Record<string, unknown>, github: GitHubAnswers = {}): string[] {
  return loadFlow(slug, env)
    .stages.filter((s) => engine("any", s.policies, context, github).passing)
    .map((s) => s.stage);
}
