/**
 * The runner's record of what each worker-owned name should hold. A change is announced before
 * its request and confirmed after the reply; while unconfirmed (the worker may have been killed
 * in between) every announced value since the last confirmed one is possible.
 */
import type { NameValue } from './messages';

export class NameLedger {
  private readonly possible = new Map<string, NameValue[]>();

  intent(name: string, value: NameValue): void {
    const now = this.possible.get(name) ?? [{ present: false }];
    now.push(value);
    this.possible.set(name, now);
  }

  done(name: string, value: NameValue): void {
    this.possible.set(name, [value]);
  }

  names(): string[] {
    return [...this.possible.keys()].sort();
  }

  /** Whether `found` (undefined: the name is absent; else the sha1 of its bytes) is a value it may hold. */
  allows(name: string, found: string | undefined): boolean {
    return (this.possible.get(name) ?? [{ present: false }]).some((value) =>
      value.present ? value.checksum === found : found === undefined,
    );
  }

  /** Names that should hold an object for sure: their only possible value is present. */
  surelyPresent(): number {
    let count = 0;
    for (const values of this.possible.values()) if (values.every((value) => value.present)) count++;
    return count;
  }
}
