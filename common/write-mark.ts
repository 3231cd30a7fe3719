// A write on its way down the stack, and the brick sessions it has been sent on. write-behind
// marks the writes it sends before a held setattr (tar's utimes and chmod at close) and hands the
// marks to that setattr; protocol/client notes each session a marked write leaves on, and a
// setattr that follows marks sent on its own session goes at once, asking the brick to apply it
// after the writes that arrived first (FopRequest.after_writes). So the close of a small file
// costs one round trip, not the write's and then the setattr's. A mark never sent on a session
// (a layer held the write back, another brick got it, the session changed) is waited for whole.
// Replicate also hands a new file's first write's mark to the setattr that relies on the marks
// that write carried (Ctx.marksOf): the brick knows the write by its request id there.
export class WriteMark {
  /** The sessions it was sent on, and its request id on each. */
  private readonly on = new Map<object, number>();
  private waiters: { session: object; wake: (sent: boolean) => void }[] = [];
  private ended = false;
  private end!: () => void;
  /** Settles when the write is answered, whatever the answer. */
  readonly finished = new Promise<void>((res) => { this.end = res; });

  /** The write was written to session's stream, as request id. */
  sent(session: object, id: number): void {
    this.on.set(session, id);
    this.waiters = this.waiters.filter((w) => {
      if (w.session !== session) return true;
      w.wake(true);
      return false;
    });
  }

  /** The write was answered (or failed): whoever waits for it to leave waits no more. */
  done(): void {
    this.ended = true;
    this.end();
    for (const w of this.waiters) w.wake(this.on.has(w.session));
    this.waiters = [];
  }

  /** Its request id on session, if it was sent there. */
  idOn(session: object): number | undefined {
    return this.on.get(session);
  }

  /** True once the write was sent on session (a later request there arrives after it); false
   *  when it finished without that. */
  sentOn(session: object): Promise<boolean> {
    if (this.on.has(session)) return Promise.resolve(true);
    if (this.ended) return Promise.resolve(false);
    return new Promise((wake) => this.waiters.push({ session, wake }));
  }
}
