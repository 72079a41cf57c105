// The SDK: what users import. Resource classes and Args types are added by the Pulumi issue.
export { parseReference, normalizeReference } from "../provider/core/image/reference";
