import { join } from "node:path";
import { projectRoot } from "../../components/stack/paths";

/**
 * The stack configs the tests run on: copies of the shipped stacks/Pulumi.*.yaml. The files
 * under stacks/ are the operator's to edit (README: First run), so no test reads them: a valid
 * edit there never turns `just test` red.
 */
export const stackFixtures = join(projectRoot, "test", "fixtures", "stacks");
