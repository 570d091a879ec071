//! The FFI glue between QEMU's plugin API (v4) and the pure bookkeeping in
//! [`crate::session`]. Every callback body runs under [`guard`], so a Rust panic is reported
//! (on QEMU's log and in the current test's record) instead of unwinding into C.

use crate::config::Config;
use crate::conflict::Access;
use crate::insn::{self, Flow};
use crate::percpu;
use crate::qemu::{
    PerVcpu, VcpuMemory, find_register, hook_marker, lock, marker_command, outs, plugin_args,
    read_register, register_translation,
};
use crate::session::{CallBuffer, TestSession, is_kernel_pc, traced_pc};
use crate::slab;
use commuter_trace_format::marker::Command;
use commuter_trace_format::record::TestRecord;
use qemu_plugin_sys::*;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

#[unsafe(no_mangle)]
pub static qemu_plugin_version: c_int = QEMU_PLUGIN_VERSION as c_int;

/// State only ever touched by the thread running that vCPU (MTTCG runs one thread per vCPU).
struct Vcpu {
    buffer: CallBuffer,
    rdi: *mut qemu_plugin_register,
    regbuf: *mut GByteArray,
    /// Buffer for guest memory reads (slab cache names).
    membuf: *mut GByteArray,
}

struct Outputs {
    records: BufWriter<File>,
    raw: Option<BufWriter<File>>,
}

struct Plugin {
    id: qemu_plugin_id_t,
    cfg: Config,
    vcpus: PerVcpu<Vcpu>,
    session: Mutex<TestSession>,
    outputs: Mutex<Outputs>,
    /// Memory callbacks are inserted into newly translated blocks.
    instrument: AtomicBool,
    /// All blocks translated before `instrument` was set have been flushed.
    instrumented: AtomicBool,
    /// Guest memory could not be read to name slab caches (said once on the log).
    slab_unreadable: AtomicBool,
    /// The per-CPU areas could not be read (said once on the log).
    percpu_unreadable: AtomicBool,
}

static PLUGIN: OnceLock<Plugin> = OnceLock::new();

fn plugin() -> &'static Plugin {
    PLUGIN
        .get()
        .expect("plugin callbacks run only after install")
}

/// Runs a callback body, turning a panic into a reported error.
fn guard(what: &str, body: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(body)) {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let error = format!("internal error in {what}: {msg}");
        outs(&error);
        if let Some(p) = PLUGIN.get() {
            lock(&p.session).add_error(error);
        }
    }
}

/// SAFETY: call only from the thread running vCPU `idx`.
unsafe fn vcpu(idx: c_uint) -> Option<&'static mut Vcpu> {
    unsafe { plugin().vcpus.get(idx) }
}

unsafe extern "C" fn on_mem(idx: c_uint, info: qemu_plugin_meminfo_t, vaddr: u64, pc: *mut c_void) {
    guard("memory callback", || {
        // SAFETY: QEMU calls this on vCPU `idx`'s thread.
        let Some(v) = (unsafe { vcpu(idx) }) else {
            return;
        };
        if !v.buffer.recording() {
            return;
        }
        // SAFETY: `info` is valid during this callback, which is where get_hwaddr is allowed.
        unsafe { record_access(&mut v.buffer, info, vaddr, pc as u64) };
    });
}

/// A kernel `call`'s store callback: the push of the return address (`ret`, the userdata) at
/// `vaddr` (registered for stores only: an indirect call's load of its target is not it).
unsafe extern "C" fn on_call(idx: c_uint, _: qemu_plugin_meminfo_t, vaddr: u64, ret: *mut c_void) {
    guard("call callback", || {
        // SAFETY: QEMU calls this on vCPU `idx`'s thread.
        let Some(v) = (unsafe { vcpu(idx) }) else {
            return;
        };
        if v.buffer.recording() {
            v.buffer.stack.call(ret as u64, vaddr);
        }
    });
}

/// A kernel `ret`'s memory callback: the load of the return address from `vaddr`.
unsafe extern "C" fn on_ret(idx: c_uint, _info: qemu_plugin_meminfo_t, vaddr: u64, _: *mut c_void) {
    guard("return callback", || {
        // SAFETY: QEMU calls this on vCPU `idx`'s thread.
        let Some(v) = (unsafe { vcpu(idx) }) else {
            return;
        };
        if v.buffer.recording() {
            v.buffer.stack.ret(vaddr);
        }
    });
}

unsafe fn record_access(buf: &mut CallBuffer, info: qemu_plugin_meminfo_t, vaddr: u64, pc: u64) {
    // The mode of the instruction, not of the memory: kernel code copying to user memory is a
    // kernel access.
    let user = !is_kernel_pc(pc);
    let hw = unsafe { qemu_plugin_get_hwaddr(info, vaddr) };
    if hw.is_null() {
        return buf.unresolved(user);
    }
    if unsafe { qemu_plugin_hwaddr_is_io(hw) } {
        return buf.io(user);
    }
    buf.record(Access {
        addr: unsafe { qemu_plugin_hwaddr_phys_addr(hw) },
        vaddr,
        pc,
        size: 1u8 << unsafe { qemu_plugin_mem_size_shift(info) }.min(6),
        write: unsafe { qemu_plugin_mem_is_store(info) },
        user,
        stack: crate::stack::NO_STACK,
    });
}

unsafe extern "C" fn on_marker(idx: c_uint, cmd: *mut c_void) {
    guard("marker callback", || {
        let Some(cmd) = marker_command(cmd) else {
            return;
        };
        // SAFETY: QEMU calls this on vCPU `idx`'s thread.
        let Some(v) = (unsafe { vcpu(idx) }) else {
            return lock(&plugin().session).add_error(format!("vcpu {idx} beyond the vCPU table"));
        };
        // SAFETY: the marker callback is registered with register access (`hook_marker`).
        match unsafe { read_register(v.rdi, &mut v.regbuf) } {
            Ok(arg) => handle_marker(v, idx, cmd, arg),
            Err(e) => lock(&plugin().session).add_error(format!("vcpu {idx}: {cmd:?}: rdi: {e}")),
        }
    });
}

fn handle_marker(v: &mut Vcpu, idx: c_uint, cmd: Command, arg: u64) {
    let p = plugin();
    match cmd {
        Command::BeginTest => {
            enable_instrumentation(p);
            let stale = lock(&p.session).begin_test(arg);
            if let Some(rec) = stale {
                write_record(p, &rec, None);
            }
        }
        Command::BeginCall => {
            if !p.instrumented.load(Ordering::Acquire) {
                lock(&p.session).add_error(format!(
                    "call {arg} began before memory instrumentation was active"
                ));
            }
            if let Err(e) = v.buffer.begin(arg, idx) {
                lock(&p.session).add_error(e);
            }
        }
        Command::EndCall => {
            let result = v.buffer.end(arg, idx);
            let mut s = lock(&p.session);
            match result {
                Ok(trace) => s.add_call(trace),
                Err(e) => s.add_error(e),
            }
        }
        Command::EndTest => end_test(p, v, arg),
    }
}

fn end_test(p: &Plugin, v: &mut Vcpu, test: u64) {
    let mut s = lock(&p.session);
    let raw = p.cfg.raw.is_some().then(|| s.raw_lines(test));
    let mut rec = s.end_test(test);
    drop(s);
    if let Some(layout) = &p.cfg.slab {
        // Now, while the objects exist: after the marker the guest tears the test down, and their
        // pages may be freed or reused.
        let stats = slab::name_record(layout, &mut VcpuMemory(&mut v.membuf), &mut rec);
        if stats.no_vmemmap && !p.slab_unreadable.swap(true, Ordering::Relaxed) {
            outs(
                "cannot read the kernel's vmemmap_base from the end-test marker: heap locations are not named by slab cache",
            );
        }
    }
    if let Some(layout) = &p.cfg.percpu
        && !percpu::place_record(layout, &mut VcpuMemory(&mut v.membuf), &mut rec)
        && !p.percpu_unreadable.swap(true, Ordering::Relaxed)
    {
        outs(
            "cannot read the kernel's per-CPU offsets from the end-test marker: per-CPU locations are not placed",
        );
    }
    write_record(p, &rec, raw);
}

fn write_record(p: &Plugin, rec: &TestRecord, raw: Option<String>) {
    let mut o = lock(&p.outputs);
    let result = serde_json::to_string(rec)
        .map_err(std::io::Error::other)
        .and_then(|line| writeln!(o.records, "{line}"))
        .and_then(|()| o.records.flush());
    if let Err(e) = result {
        outs(&format!("cannot write {}: {e}", p.cfg.out.display()));
    }
    if let (Some(w), Some(raw)) = (o.raw.as_mut(), raw)
        && let Err(e) = w.write_all(raw.as_bytes())
    {
        outs(&format!("cannot write the raw access log: {e}"));
    }
}

/// First begin-test: flush every translated block so that kernel code is re-translated with
/// memory callbacks (instrumenting the whole boot would cost ~500 M callbacks).
fn enable_instrumentation(p: &Plugin) {
    if p.instrument.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: plain API call; the reset completes asynchronously and then calls `on_reset`.
    unsafe { qemu_plugin_reset(p.id, Some(on_reset)) };
}

unsafe extern "C" fn on_reset(id: qemu_plugin_id_t) {
    guard("reset callback", || {
        // The reset removed every callback; the vCPU-init one is not needed any more.
        register_translation(id, Some(on_translate), Some(on_exit));
        plugin().instrumented.store(true, Ordering::Release);
        outs("memory instrumentation enabled");
    });
}

unsafe extern "C" fn on_translate(_id: qemu_plugin_id_t, tb: *mut qemu_plugin_tb) {
    guard("translation callback", || {
        let p = plugin();
        let instrument = p.instrument.load(Ordering::Acquire);
        let n = unsafe { qemu_plugin_tb_n_insns(tb) };
        for i in 0..n {
            // SAFETY: `i` is below the block's instruction count.
            let insn = unsafe { qemu_plugin_tb_get_insn(tb, i) };
            unsafe { instrument_insn(insn, instrument, &p.cfg) };
        }
    });
}

unsafe fn instrument_insn(insn: *mut qemu_plugin_insn, memory: bool, cfg: &Config) {
    unsafe {
        if hook_marker(insn, Some(on_marker)) {
            return;
        }
        let pc = qemu_plugin_insn_vaddr(insn);
        // Decided per instruction at translation time: kernel code that touches user memory
        // (copy_to_user) counts, user code only with `user=on` (off, it gets no callback and
        // runs as fast as untraced code). The buffer keeps only accesses inside a call.
        if !memory || !traced_pc(pc, cfg.user) {
            return;
        }
        let mut buf = [0u8; 16];
        let got = qemu_plugin_insn_data(insn, buf.as_mut_ptr().cast(), buf.len());
        let bytes = &buf[..got];
        if cfg.stacks && is_kernel_pc(pc) {
            instrument_flow(insn, pc, bytes);
        }
        // Saved registers and return addresses are never shared: no callback (the flow
        // callback above still sees a call's push and a ret's pop).
        if !insn::own_stack_only(bytes) {
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

/// Gives a kernel `call` or `ret` the memory callback that feeds the shadow call stack.
unsafe fn instrument_flow(insn: *mut qemu_plugin_insn, pc: u64, bytes: &[u8]) {
    let (cb, rw, data): (qemu_plugin_vcpu_mem_cb_t, _, u64) = match insn::decode(bytes) {
        Some(Flow::Call) => (
            Some(on_call),
            qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_W,
            pc + unsafe { qemu_plugin_insn_size(insn) } as u64,
        ),
        Some(Flow::Ret) => (Some(on_ret), qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_R, 0),
        None => return,
    };
    unsafe {
        qemu_plugin_register_vcpu_mem_cb(
            insn,
            cb,
            qemu_plugin_cb_flags::QEMU_PLUGIN_CB_NO_REGS,
            rw,
            data as *mut c_void,
        );
    }
}

unsafe extern "C" fn on_vcpu_init(_id: qemu_plugin_id_t, idx: c_uint) {
    guard("vCPU init callback", || {
        // SAFETY: QEMU calls this on vCPU `idx`'s thread.
        let Some(v) = (unsafe { vcpu(idx) }) else {
            return;
        };
        v.rdi = unsafe { find_register("rdi") };
        if v.rdi.is_null() {
            outs(&format!(
                "vcpu {idx}: no register named rdi; markers will be rejected"
            ));
        }
    });
}

unsafe extern "C" fn on_exit(_id: qemu_plugin_id_t, _data: *mut c_void) {
    guard("exit callback", || {
        let p = plugin();
        let abandoned = lock(&p.session).abandon();
        if let Some(rec) = abandoned {
            write_record(p, &rec, None);
        }
        let mut o = lock(&p.outputs);
        if let Some(raw) = o.raw.as_mut() {
            let _ = raw.flush();
        }
    });
}

fn open_outputs(cfg: &Config) -> Result<Outputs, String> {
    let create = |path: &std::path::Path| {
        File::create(path)
            .map(|f| BufWriter::with_capacity(1 << 16, f))
            .map_err(|e| format!("cannot create {}: {e}", path.display()))
    };
    Ok(Outputs {
        records: create(&cfg.out)?,
        raw: cfg.raw.as_deref().map(create).transpose()?,
    })
}

fn install(id: qemu_plugin_id_t, info: &qemu_info_t, args: &[String]) -> Result<(), String> {
    let cfg = Config::parse(args).map_err(|e| e.to_string())?;
    if let crate::config::Mode::RefTrace(layout) = cfg.mode {
        return crate::plugin_reftrace::install(id, info, &cfg, layout);
    }
    let outputs = open_outputs(&cfg)?;
    let vcpus = PerVcpu::new(info, || Vcpu {
        buffer: CallBuffer::new(cfg.max_accesses),
        rdi: std::ptr::null_mut(),
        regbuf: std::ptr::null_mut(),
        membuf: std::ptr::null_mut(),
    });
    let lazy = cfg.lazy;
    let session = Mutex::new(TestSession::new(cfg.calls));
    let p = Plugin {
        id,
        cfg,
        vcpus,
        session,
        outputs: Mutex::new(outputs),
        instrument: AtomicBool::new(!lazy),
        instrumented: AtomicBool::new(!lazy),
        slab_unreadable: AtomicBool::new(false),
        percpu_unreadable: AtomicBool::new(false),
    };
    PLUGIN
        .set(p)
        .map_err(|_| "the plugin was installed twice".to_string())?;
    register_translation(id, Some(on_translate), Some(on_exit));
    // SAFETY: registering a callback with the id QEMU gave us.
    unsafe { qemu_plugin_register_vcpu_init_cb(id, Some(on_vcpu_init)) };
    Ok(())
}

/// Entry point QEMU calls when it loads the plugin.
///
/// # Safety
/// Called by QEMU with a valid `info` and `argc` valid argument strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qemu_plugin_install(
    id: qemu_plugin_id_t,
    info: *const qemu_info_t,
    argc: c_int,
    argv: *mut *mut c_char,
) -> c_int {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let args = unsafe { plugin_args(argc, argv) };
        install(id, unsafe { &*info }, &args)
    }));
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            outs(&e);
            -1
        }
        Err(_) => {
            outs("internal error while installing the plugin");
            -1
        }
    }
}
