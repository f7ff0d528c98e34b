// Write-Progress for the CLI: long operations (jobs the daemon runs, the VHD cmdlets' own file
// work) report percent and status here, and stderr shows them, so stdout stays the cmdlet's
// output (-Json parseable). On a terminal: one line, a bar redrawn in place and cleared when
// the work ends. Otherwise (a pipe, a log file): a plain line each time an activity passes
// another 10 %, which a log can keep. VMHOST_PROGRESS_PREFERENCE=SilentlyContinue turns
// both off, as $ProgressPreference does in PowerShell.
import type { Writer } from './cmdlet.ts';

/** One activity's progress; `done()` ends it (the bar is cleared), also after a failure. */
export interface Progress {
  update(percent: number, status: string): void;
  done(): void;
}

interface Activity { name: string; percent: number; status: string }

const BAR = 30;
const PLAIN_STEP = 10;
const REDRAW_MS = 100;

/** Where text goes, seen as a terminal: `isTTY` and `columns` as a tty.WriteStream has them. */
type Terminal = Writer & { isTTY?: boolean; columns?: number };

export class ProgressDisplay {
  /** Activities now running, in the order they began (the line shows the first, counting the others). */
  private readonly active: Activity[] = [];
  private drawn = '';
  private drawnAt = 0;
  private readonly tty: boolean;

  constructor(private readonly out: Terminal, private readonly silent = process.env.VMHOST_PROGRESS_PREFERENCE?.toLowerCase() === 'silentlycontinue') {
    this.tty = out.isTTY === true;
  }

  begin(name: string): Progress {
    const a: Activity = { name, percent: 0, status: '' };
    this.active.push(a);
    let printedStep = 0;
    return {
      update: (percent, status) => {
        if (!this.active.includes(a)) return;
        const before = a.percent;
        a.percent = Math.max(0, Math.min(100, Math.floor(percent)));
        a.status = status;
        if (this.silent) return;
        if (this.tty) {
          // A new percent is drawn at once; a new status alone (a byte count per chunk) at most every REDRAW_MS.
          if (a.percent !== before || Date.now() - this.drawnAt >= REDRAW_MS) this.draw();
          return;
        }
        const step = Math.floor(a.percent / PLAIN_STEP) * PLAIN_STEP;
        if (step <= printedStep) return;
        printedStep = step;
        this.out.write(`${a.name}: ${a.percent}%${a.status ? ` ${a.status}` : ''}\n`);
      },
      done: () => {
        const i = this.active.indexOf(a);
        if (i < 0) return;
        this.active.splice(i, 1);
        if (this.tty && !this.silent) this.draw();
      },
    };
  }

  /** Before other text goes to the same terminal (a warning, the error line): the bar leaves the line; the next update draws it again. */
  clear(): void {
    if (this.drawn === '') return;
    this.out.write('\r\x1b[K');
    this.drawn = '';
  }

  private draw(): void {
    const line = this.active.length === 0 ? '' : barLine(this.active[0]!, this.active.length - 1, this.width());
    if (line === this.drawn) return;
    // \r back to the line's start, the new text, \x1b[K erases what a longer old text left.
    this.out.write(`\r${line}\x1b[K`);
    this.drawn = line;
    this.drawnAt = Date.now();
  }

  private width(): number {
    return typeof this.out.columns === 'number' && this.out.columns > 20 ? this.out.columns : 80;
  }
}

/** `Activity [#########.....]  45% status (+1 more)`, cut to the terminal's width less one (no wrap). */
export function barLine(a: Activity, others: number, columns: number): string {
  const filled = Math.round((a.percent * BAR) / 100);
  const more = others > 0 ? ` (+${others} more)` : '';
  const text = `${a.name} [${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${String(a.percent).padStart(3)}%${a.status ? ` ${a.status}` : ''}${more}`;
  return text.length < columns ? text : text.slice(0, columns - 1);
}
