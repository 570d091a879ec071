//! The FFI glue of `mode=reftrace` ([`crate::reftrace`]): its own callbacks, installed instead
//! of the conflict mode's by [`crate::plugin`]. Every callback body runs under [`guard`].
//!
//! The guest's markers: begin-test (argument: the pid of the guest's `/init`, whose own
//! accesses are not the workload's) turns memory instrumentation on; begin-call starts the
//! recording, end-call stops it; end-test writes the end record. `__switch_to`'s first
//! instruction is instrumented from the start, so every vCPU knows its task by then.

use crate::config::Config;
use crate::qemu::{
    PerVcpu, VcpuMemory, find_register, hook_marker, lock, marker_command, outs, read_register,
    register_translation,
};
use crate::reftrace::{self, MemAccess, Outcome, Pages, VcpuState};
use crate::slab::GuestMemory;
use commuter_trace_format::marker::Command;
use commuter_trace_format::reftrace::{Backing, End, RefTraceLayout};
use qemu_plugin_sys::*;
use std::ffi::{c_uint, c_void};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// State only touched by the thread running that vCPU.
struct Vcpu {
    state: VcpuState,
    rdi: *mut qemu_plugin_register,
    rsi: *mut qemu_plugin_register,
    regbuf: *mut GByteArray,
    membuf: *mut GByteArray,
}

struct Output {
    file: BufWriter<File>,
    references: u64,
}

struct RefTracer {
    id: qemu_plugin_id_t,
    layout: RefTraceLayout,
    out_path: std::path::PathBuf,
    vcpus: PerVcpu<Vcpu>,
    out: Mutex<Output>,
    /// The guest's `/init`: its accesses are not recorded.
    exclude: AtomicU32,
    recording: AtomicBool,
    instrument: AtomicBool,
    instrumented: AtomicBool,
    late: AtomicBool,
    unresolved: AtomicU32,
    unknown_task: AtomicU32,
    unreadable: AtomicBool,
    /// `vmemmap_base`'s value, read once (0: not yet).
    vmemmap: AtomicU64,
}

static TRACER: OnceLock<RefTracer> = OnceLock::new();

fn tracer() -> &'static RefTracer {
    TRACER
        .get()
        .expect("reftrace callbacks run only after install")
}

/// Runs a callback body; a panic is reported on the log instead of unwinding into C.
fn guard(what: &str, body: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(body)).is_err() {
        outs(&format!("internal error in the reftrace {what} callback"));
    }
}

/// SAFETY: call only from the thread running vCPU `idx`.
unsafe fn vcpu(idx: c_uint) -> Option<&'static mut Vcpu> {
    unsafe { tracer().vcpus.get(idx) }
}

/// `struct page` read through the vCPU's memory.
struct PageReader<'a> {
    t: &'static RefTracer,
    mem: VcpuMemory<'a>,
}

impl Pages for PageReader<'_> {
    fn backing(&mut self, pfn: u64) -> Option<Backing> {
        let mut vmemmap = self.t.vmemmap.load(Ordering::Relaxed);
        if vmemmap == 0 {
            let mut b = [0u8; 8];
            if !self.mem.read(self.t.layout.vmemmap_base, &mut b) {
                return None;
            }
            vmemmap = u64::from_le_bytes(b);
            self.t.vmemmap.store(vmemmap, Ordering::Relaxed);
        }
        reftrace::read_backing(&self.t.layout, vmemmap, &mut self.mem, pfn)
    }
}

unsafe extern "C" fn on_mem(idx: c_uint, info: qemu_plugin_meminfo_t, vaddr: u64, pc: *mut c_void) {
    guard("memory", || {
        let t = tracer();
        if !t.recording.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: QEMU calls this on vCPU `idx`'s thread.
        let Some(v) = (unsafe { vcpu(idx) }) else {
            return;
        };
        // SAFETY: `info` is valid during this callback.
        let (paddr, write) = unsafe {
            let hw = qemu_plugin_get_hwaddr(info, vaddr);
            if !hw.is_null() && qemu_plugin_hwaddr_is_io(hw) {
                return;
            }
            let paddr = (!hw.is_null()).then(|| qemu_plugin_hwaddr_phys_addr(hw));
            (paddr, qemu_plugin_mem_is_store(info))
        };
        let access = MemAccess {
            pc: pc as u64,
            vaddr,
            paddr,
            write,
        };
        let mut pages = PageReader {
            t,
            mem: VcpuMemory(&mut v.membuf),
        };
        let outcome = v
            .state
            .access(access, t.exclude.load(Ordering::Relaxed), &mut pages);
        let reference = match outcome {
            Outcome::Reference(r) => r,
            Outcome::Nothing => return,
            Outcome::Unresolved => {
                t.unresolved.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Outcome::UnknownTask => {
                t.unknown_task.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Outcome::Unreadable(r) => {
                t.unreadable.store(true, Ordering::Relaxed);
                match r {
                    Some(r) => r,
                    None => return,
                }
            }
        };
        // One lock for every vCPU: the file's order is the order the references were made in.
        let mut o = lock(&t.out);
        if o.file.write_all(&reference.encode()).is_ok() {
            o.references += 1;
        }
    });
}

unsafe extern "C" fn on_switch(idx: c_uint, _data: *mut c_void) {
    guard("__switch_to", || {
        let t = tracer();
        // SAFETY: QEMU calls this on vCPU `idx`'s thread, with register access.
        let Some(v) = (unsafe { vcpu(idx) }) else {
            return;
        };
        // SAFETY: registered with register access.
        let next = unsafe { read_register(v.rsi, &mut v.regbuf) }.ok();
        let task =
            next.and_then(|n| reftrace::read_task(&t.layout, &mut VcpuMemory(&mut v.membuf), n));
        v.state.switch_to(task);
    });
}

unsafe extern "C" fn on_marker(idx: c_uint, cmd: *mut c_void) {
    guard("marker", || {
        let Some(cmd) = marker_command(cmd) else {
            return;
        };
        let t = tracer();
        // SAFETY: QEMU calls this on vCPU `idx`'s thread, with register access.
        let Some(v) = (unsafe { vcpu(idx) }) else {
            return;
        };
        // SAFETY: the marker callback is registered with register access (`hook_marker`).
        let arg = match unsafe { read_register(v.rdi, &mut v.regbuf) } {
            Ok(arg) => arg,
            Err(e) => return outs(&format!("vcpu {idx}: {cmd:?}: rdi: {e}")),
        };
        match cmd {
            Command::BeginTest => {
                t.exclude.store(arg as u32, Ordering::Relaxed);
                if !t.instrument.swap(true, Ordering::AcqRel) {
                    // SAFETY: plain API call; the reset completes asynchronously.
                    unsafe { qemu_plugin_reset(t.id, Some(on_reset)) };
                }
            }
            Command::BeginCall => {
                if !t.instrumented.load(Ordering::Acquire) {
                    t.late.store(true, Ordering::Relaxed);
                }
                t.recording.store(true, Ordering::Release);
            }
            Command::EndCall => t.recording.store(false, Ordering::Release),
            Command::EndTest => {
                t.recording.store(false, Ordering::Release);
                let mut o = lock(&t.out);
                let end = End {
                    references: o.references,
                    unresolved: t.unresolved.load(Ordering::Relaxed),
                    unknown_task: t.unknown_task.load(Ordering::Relaxed),
                    late: t.late.load(Ordering::Relaxed),
                    unreadable_pages: t.unreadable.load(Ordering::Relaxed),
                };
                let written = o
                    .file
                    .write_all(&end.encode())
                    .and_then(|()| o.file.flush());
                if let Err(e) = written {
                    outs(&format!("cannot write {}: {e}", t.out_path.display()));
                }
                outs(&format!(
                    "reference trace: {} references written",
                    end.references
                ));
            }
        }
    });
}

unsafe extern "C" fn on_reset(id: qemu_plugin_id_t) {
    guard("reset", || {
        register_translation(id, Some(on_translate), Some(on_exit));
        tracer().instrumented.store(true, Ordering::Release);
        outs("memory instrumentation enabled (reftrace)");
    });
}

unsafe extern "C" fn on_translate(_id: qemu_plugin_id_t, tb: *mut qemu_plugin_tb) {
    guard("translation", || {
        let t = tracer();
        let memory = t.instrument.load(Ordering::Acquire);
        let n = unsafe { qemu_plugin_tb_n_insns(tb) };
        for i in 0..n {
            // SAFETY: `i` is below the block's instruction count.
            unsafe { instrument_insn(t, qemu_plugin_tb_get_insn(tb, i), memory) };
        }
    });
}

unsafe fn instrument_insn(t: &RefTracer, insn: *mut qemu_plugin_insn, memory: bool) {
    unsafe {
        if hook_marker(insn, Some(on_marker)) {
            return;
        }
        let pc = qemu_plugin_insn_vaddr(insn);
        if pc == t.layout.switch_to {
            qemu_plugin_register_vcpu_insn_exec_cb(
                insn,
                Some(on_switch),
                qemu_plugin_cb_flags::QEMU_PLUGIN_CB_R_REGS,
                std::ptr::null_mut(),
            );
        }
        // User code for VM references, kernel code for the copies of FS references.
        if memory {
            qemu_plugin_register_vcpu_mem_cb(
                insn,
                Some(on_mem),
                qemu_plugin_cb_flags::QEMU_PLUGIN_CB_NO_REGS,
                qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_RW,
                pc as *mut c_void,
            );
        }
    }
}

unsafe extern "C" fn on_vcpu_init(_id: qemu_plugin_id_t, idx: c_uint) {
    guard("vCPU init", || {
        // SAFETY: QEMU calls this on vCPU `idx`'s thread.
        let Some(v) = (unsafe { vcpu(idx) }) else {
            return;
        };
        v.rdi = unsafe { find_register("rdi") };
        v.rsi = unsafe { find_register("rsi") };
        if v.rdi.is_null() || v.rsi.is_null() {
            outs(&format!(
                "vcpu {idx}: registers rdi/rsi not found; markers and task switches are not seen"
            ));
        }
    });
}

unsafe extern "C" fn on_exit(_id: qemu_plugin_id_t, _data: *mut c_void) {
    guard("exit", || {
        let _ = lock(&tracer().out).file.flush();
    });
}

/// Installs the reftrace mode (called by [`crate::plugin`]'s install for `mode=reftrace`).
pub(crate) fn install(
    id: qemu_plugin_id_t,
    info: &qemu_info_t,
    cfg: &Config,
    layout: RefTraceLayout,
) -> Result<(), String> {
    let file =
        File::create(&cfg.out).map_err(|e| format!("cannot create {}: {e}", cfg.out.display()))?;
    let mut file = BufWriter::with_capacity(1 << 20, file);
    file.write_all(&commuter_trace_format::reftrace::header())
        .map_err(|e| format!("cannot write {}: {e}", cfg.out.display()))?;
    let vcpus = PerVcpu::new(info, || Vcpu {
        state: VcpuState::default(),
        rdi: std::ptr::null_mut(),
        rsi: std::ptr::null_mut(),
        regbuf: std::ptr::null_mut(),
        membuf: std::ptr::null_mut(),
    });
    let t = RefTracer {
        id,
        layout,
        out_path: cfg.out.clone(),
        vcpus,
        out: Mutex::new(Output {
            file,
            references: 0,
        }),
        exclude: AtomicU32::new(0),
        recording: AtomicBool::new(false),
        instrument: AtomicBool::new(!cfg.lazy),
        instrumented: AtomicBool::new(!cfg.lazy),
        late: AtomicBool::new(false),
        unresolved: AtomicU32::new(0),
        unknown_task: AtomicU32::new(0),
        unreadable: AtomicBool::new(false),
        vmemmap: AtomicU64::new(0),
    };
    TRACER
        .set(t)
        .map_err(|_| "the plugin was installed twice".to_string())?;
    register_translation(id, Some(on_translate), Some(on_exit));
    // SAFETY: registering a callback with the id QEMU gave us.
    unsafe { qemu_plugin_register_vcpu_init_cb(id, Some(on_vcpu_init)) };
    Ok(())
}
