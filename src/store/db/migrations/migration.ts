/**
 * A migration is a name that sorts in apply order and a list of SQL statements. Plain SQL keeps
 * one set valid for PGlite and PostgreSQL alike; each statement runs on its own (PGlite's extended
 * protocol takes one statement per call) inside the single migration transaction.
 */
export interface Migration {
  /** `NNNN_description`; applied in lexical order and recorded by this name. */
  readonly name: string;
  readonly statements: readonly string[];
}
