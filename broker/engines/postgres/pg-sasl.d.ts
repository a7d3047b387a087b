// Types for node-postgres's SCRAM client (an exported path of `pg` without its own declarations).
declare module 'pg/lib/crypto/sasl.js' {
  interface ScramSession {
    mechanism: string;
    response: string;
    message: string;
  }
  const sasl: {
    startSession(mechanisms: string[]): ScramSession;
    continueSession(session: ScramSession | null, password: string, serverData: string): Promise<void>;
    finalizeSession(session: ScramSession | null, serverData: string): void;
  };
  export default sasl;
}
