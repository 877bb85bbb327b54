import { afterEach } from "vitest";
import { Bifrost } from "./harness";

/** For one suite: starts a harness per call and stops every one of them after each test. */
export function bifrostPerTest(): (...args: ConstructorParameters<typeof Bifrost>) => Promise<Bifrost> {
  const live: Bifrost[] = [];
  afterEach(async () => {
    await Promise.all(live.splice(0).map((b) => b.stop()));
  });
  return async (...args) => {
    const b = await new Bifrost(...args).start();
    live.push(b);
    return b;
  };
}
