/** The outbound-address guard and the upstream exchange shared by the egress proxy and the model gateway's HTTP client. */
export { classifyAddress, classifyIp, parseIpLiteral, looksNumeric, type AddressClass, type IpAddress } from './address.js';
export {
  resolveForConnect,
  guardedLookup,
  hostInList,
  systemResolver,
  EgressRefusedError,
  type Resolver,
  type ResolvedAddress,
  type EgressAllow,
  type ResolveOptions,
  type ResolveRefusal,
  type ConnectTarget,
} from './resolve.js';
export { LiteralVerdicts } from './literal-verdicts.js';
export { schemeAllowed } from './scheme.js';
export { UpstreamExchange, UpstreamAbort, type UpstreamResponse, type BodySink } from './exchange.js';
export { UpstreamError, classifyUpstreamError, type UpstreamFailure } from './upstream-errors.js';
