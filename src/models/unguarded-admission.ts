/**
 * An Admission that admits everything and settles into nothing: for deployments and tests that
 * run the model gateway without the admission pipeline. Settlement is still exactly-once, so
 * handler bugs (a double settle) show up the same way as with the real pipeline.
 */
import type { Admission, AdmissionTicket, SettleOutcome } from '../admission/types.js';

export function unguardedAdmission(onSettle?: (requestId: string, outcome: SettleOutcome) => void): Admission {
  return {
    admit: async (request) => {
      let settled = false;
      const ticket: AdmissionTicket = {
        requestId: request.requestId,
        get settled() {
          return settled;
        },
        settle: async (outcome) => {
          if (settled) return;
          settled = true;
          onSettle?.(request.requestId, outcome);
        },
      };
      return { ok: true, ticket, headers: {} };
    },
  };
}
