//! SIGINT and SIGTERM during a training run: the first asks the trainer to stop at the next
//! step boundary (it writes a checkpoint and prints the resume command; the job exits 130 or
//! 143); a second one exits at once, restoring the terminal (leaving the TUI's alternate screen,
//! showing the cursor, leaving raw mode).
//!
//! The signals are received on a thread of their own (signal-hook's iterator), so nothing
//! but an atomic store happens in the signal handler itself.
//!
//! burn-train's dashboard puts the terminal in raw mode, which turns the terminal's `ISIG`
//! off: Ctrl-C would arrive as a key the dashboard ignores. While a run lives, a thread turns
//! `ISIG` back on whenever it finds it off (every 100 ms), so Ctrl-C stays SIGINT.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The first signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();

/// Starts handling SIGINT and SIGTERM as the module says (once per process; later calls do
/// nothing). A failure to install is reported as a warning: the run goes on with the default
/// handling.
pub fn install() {
    INSTALL.call_once(|| match Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let spawned = std::thread::Builder::new()
                .name("bone-signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        on_signal(signal);
                    }
                });
            if let Err(e) = spawned {
                eprintln!("warning: cannot watch for SIGINT/SIGTERM: {e}");
            }
        }
        Err(e) => eprintln!("warning: cannot watch for SIGINT/SIGTERM: {e}"),
    });
    INSTALL_CTRL_C.call_once(keep_ctrl_c_a_signal);
}

static INSTALL_CTRL_C: Once = Once::new();

/// Starts the thread that keeps Ctrl-C a signal on the terminal of stdin (none when stdin is
/// not a terminal).
fn keep_ctrl_c_a_signal() {
    if !std::io::stdin().is_terminal() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("bone-ctrl-c".into())
        .spawn(|| loop {
            turn_isig_on(libc::STDIN_FILENO);
            std::thread::sleep(std::time::Duration::from_millis(100));
        });
    if let Err(e) = spawned {
        eprintln!("warning: Ctrl-C may not reach the run while the dashboard shows: {e}");
    }
}

/// Sets `ISIG` on terminal `fd` if it is off (raw mode); returns whether it changed it.
fn turn_isig_on(fd: libc::c_int) -> bool {
    // SAFETY: `termios` is plain old data; tcgetattr fills it for a valid descriptor (its
    // result is checked) and tcsetattr only reads it.
    unsafe {
        let mut term: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut term) != 0 || term.c_lflag & libc::ISIG != 0 {
            return false;
        }
        term.c_lflag |= libc::ISIG;
        libc::tcsetattr(fd, libc::TCSANOW, &term) == 0
    }
}

/// The first signal: remember it (the trainer polls [`received`]). A second: exit now.
fn on_signal(signal: i32) {
    let first = RECEIVED
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    if first {
        eprintln!(
            "{}: stopping at the next step boundary and writing a checkpoint (send it again \
             to exit at once)",
            name(signal)
        );
        return;
    }
    restore_terminal();
    eprintln!(
        "{} again: exiting at once; `--resume` continues from the last checkpoint written",
        name(signal)
    );
    std::process::exit(exit_status(signal));
}

/// The first SIGINT or SIGTERM received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// `SIGINT` or `SIGTERM` (the number otherwise).
pub fn name(signal: i32) -> String {
    match signal {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        other => format!("signal {other}"),
    }
}

/// The shell's exit status of a process stopped by `signal`: 128 + its number (130 for
/// SIGINT, 143 for SIGTERM).
pub fn exit_status(signal: i32) -> i32 {
    128 + signal
}

/// Leaves the alternate screen and raw mode and shows the cursor, when stdout is a terminal
/// (the TUI's state); harmless when they were not in use.
pub fn restore_terminal() {
    let mut stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return;
    }
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        stdout,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = stdout.flush();
}
