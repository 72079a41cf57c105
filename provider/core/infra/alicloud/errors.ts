/**
 * Alibaba Cloud API errors. The API answers failures with HTTP 4xx/5xx and a JSON body
 * `{ RequestId, HostId, Code, Message, Recommend }`. Whether we retry is decided by the code,
 * never by the message: only the transient codes are retried; everything else
 * fails at once, with the code, the message, the request id and what to do.
 */
export class AlicloudApiError extends Error {
  override readonly name = "AlicloudApiError";
  readonly code: string;
  readonly requestId: string | undefined;
  readonly httpStatus: number | undefined;
  readonly retryable: boolean;
  readonly action: string;
  constructor(opts: {
    action: string;
    code: string;
    message: string;
    requestId?: string;
    httpStatus?: number;
    retryable?: boolean;
    cause?: unknown;
  }) {
    const hint = hintFor(opts.code);
    const rid = opts.requestId ? ` (RequestId ${opts.requestId})` : "";
    super(
      `${opts.action}: ${opts.code}: ${opts.message}${rid}${hint ? ` — ${hint}` : ""}`,
      opts.cause === undefined ? undefined : { cause: opts.cause },
    );
    this.action = opts.action;
    this.code = opts.code;
    this.requestId = opts.requestId;
    this.httpStatus = opts.httpStatus;
    this.retryable = opts.retryable ?? isRetryableCode(opts.code, opts.action, opts.httpStatus);
  }
}

/** Codes that may succeed when tried again. */
export function isRetryableCode(code: string, action: string, httpStatus?: number): boolean {
  if (code.startsWith("Throttling")) return true; // Throttling, Throttling.User, Throttling.Api, ...
  if (
    code.startsWith("IncorrectStatus") ||
    code === "IncorrectInstanceStatus" ||
    code.startsWith("IncorrectInstanceStatus.")
  )
    return true;
  if (
    code.startsWith("IncorrectVpcStatus") ||
    code.startsWith("IncorrectVSwitchStatus") ||
    code.startsWith("IncorrectEipStatus")
  )
    return true;
  switch (code) {
    case "ServiceUnavailable":
    case "ServiceUnavailableTemporary":
    case "SerivceUnavailableTemporary": // sic, as some services spell it
    case "SystemBusy":
    case "InternalError":
    case "InternalFailure":
    case "UnknownError":
    case "OperationConflict":
    case "LastTokenProcessing":
    case "TaskConflict":
    case "RequestTimeout":
      return true;
  }
  // Deleting a security group / VSwitch / VPC while instances are still going away.
  if (code.startsWith("DependencyViolation") && action.startsWith("Delete")) return true;
  if (httpStatus !== undefined && httpStatus >= 500) return true;
  return false;
}

/** `*.NotFound` (and the few older spellings) on a delete means the thing is already gone. */
export function isNotFound(err: unknown): boolean {
  if (!(err instanceof AlicloudApiError)) return false;
  return (
    err.code.endsWith(".NotFound") ||
    err.code === "NotFound" ||
    err.code.startsWith("InvalidInstanceId.NotFound") ||
    err.code === "InvalidAllocationId.NotFound"
  );
}

/** What a user should do about a non-transient error. */
export function hintFor(code: string): string | undefined {
  if (
    code === "InvalidAccessKeyId.NotFound" ||
    code === "InvalidAccessKeyId" ||
    code === "InvalidAccessKeyId.Inactive"
  )
    return "check ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET (or the aliyun profile) and that the key is active";
  if (code === "SignatureDoesNotMatch" || code === "IncompleteSignature" || code === "InvalidSignature")
    return "check ALIBABA_CLOUD_ACCESS_KEY_SECRET: the secret does not belong to this AccessKey ID";
  if (code === "SignatureNonceUsed" || code === "InvalidTimeStamp.Expired" || code === "IllegalTimestamp")
    return "check this machine's clock (the request date must be within 15 minutes of the server's)";
  if (code.startsWith("QuotaExceed"))
    return "raise the quota in the Alibaba Cloud quota center or ask for fewer instances";
  if (code.startsWith("Forbidden") || code === "NoPermission")
    return "the RAM user lacks permission for this action: grant AliyunECSFullAccess/AliyunVPCFullAccess or a policy allowing it";
  if (code === "InvalidAccountStatus.NotEnoughBalance" || code === "InsufficientBalance")
    return "top up the account balance";
  if (
    code.startsWith("OperationDenied.NoStock") ||
    code === "Zone.NotOnSale" ||
    code.startsWith("InvalidInstanceType")
  )
    return "choose another instance type or zone (or give cpu/memory so one is picked)";
  if (code.startsWith("InvalidImageId")) return "check imageId exists in this region";
  if (code.startsWith("InvalidKeyPairName")) return "check keyPairName exists in this region";
  return undefined;
}
