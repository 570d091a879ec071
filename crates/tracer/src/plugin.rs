//! The FFI glue between QEMU's plugin API (v4) and the pure bookkeeping in
//! [`crate::session`]. Every callback body runs under [`guard`], so a Rust panic is reported
//! (on QEMU's log and in the current test's record) instead of unwinding into C.

use crate::config::Config;
use crate::conflict::Access;
use crate::percpu;
use crate::session::{CallBuffer, TestSession, is_kernel_pc, traced_pc};
use crate::slab::{self, GuestMemory};
use crate::stack::{self, Flow};
use commuter_trace_format::marker::{self, Command};
use commuter_trace_format::record::TestRecord;
use qemu_plugin_sys::*;
use std::cell::UnsafeCell;
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

#[unsafe(no_mangle)]
pub static qemu_plugin_version: c_int = QEMU_PLUGIN_VERSION as c_int;

/// vCPU slots when QEMU does not say how many vCPUs there can be (user mode).
const FALLBACK_VCPUS: usize = 1024;

unsafe extern "C" {
    // glib is part of every QEMU process; the register API fills a GByteArray.
    fn g_byte_array_new() -> *mut GByteArray;
    fn g_byte_array_set_size(array: *mut GByteArray, len: c_uint) -> *mut GByteArray;
    fn g_array_free(array: *mut GArray, free_segment: bool) -> *mut c_char;
}

/// State only ever touched by the thread running that vCPU (MTTCG runs one thread per vCPU).
struct Vcpu {
    buffer: CallBuffer,
    rdi: *mut qemu_plugin_register,
    regbuf: *mut GByteArray,
    /// Buffer for guest memory reads (slab cache names).
    membuf: *mut GByteArray,
}

struct VcpuCell(UnsafeCell<Vcpu>);
// SAFETY: each cell is accessed only from its own vCPU's thread (see `Vcpu`); the raw pointers
// inside are QEMU/glib handles that are not tied to the thread that created the table.
unsafe impl Sync for VcpuCell {}
unsafe impl Send for VcpuCell {}

struct Outputs {
    records: BufWriter<File>,
    raw: Option<BufWriter<File>>,
}

struct Plugin {
    id: qemu_plugin_id_t,
    cfg: Config,
    vcpus: Box<[VcpuCell]>,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a guarded callback panicked; the data is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn outs(msg: &str) {
    let line =
        CString::new(format!("commuter-tracer: {msg}\n").replace('\0', " ")).unwrap_or_default();
    // SAFETY: a valid NUL-terminated string.
    unsafe { qemu_plugin_outs(line.as_ptr()) };
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
    let cell = plugin().vcpus.get(idx as usize)?;
    Some(unsafe { &mut *cell.0.get() })
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

/// Reads `%rdi`, the marker's argument.
unsafe fn read_arg(v: &mut Vcpu) -> Result<u64, String> {
    if v.rdi.is_null() {
        return Err("register rdi is not readable (no vCPU-init callback?)".into());
    }
    unsafe {
        if v.regbuf.is_null() {
            v.regbuf = g_byte_array_new();
        }
        g_byte_array_set_size(v.regbuf, 0);
        let n = qemu_plugin_read_register(v.rdi, v.regbuf);
        if n < 8 {
            return Err(format!("reading rdi returned {n} bytes"));
        }
        let mut b = [0u8; 8];
        std::ptr::copy_nonoverlapping((*v.regbuf).data, b.as_mut_ptr(), 8);
        Ok(u64::from_le_bytes(b))
    }
}

unsafe extern "C" fn on_marker(idx: c_uint, cmd: *mut c_void) {
    guard("marker callback", || {
        let Some(cmd) = Command::ALL
            .into_iter()
            .find(|c| *c as usize == cmd as usize)
        else {
            return;
        };
        // SAFETY: QEMU calls this on vCPU `idx`'s thread.
        let Some(v) = (unsafe { vcpu(idx) }) else {
            return lock(&plugin().session).add_error(format!("vcpu {idx} beyond the vCPU table"));
        };
        match unsafe { read_arg(v) } {
            Ok(arg) => handle_marker(v, idx, cmd, arg),
            Err(e) => lock(&plugin().session).add_error(format!("vcpu {idx}: {cmd:?}: {e}")),
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
        let stats = slab::name_record(layout, &mut VcpuMemory(v), &mut rec);
        if stats.no_vmemmap && !p.slab_unreadable.swap(true, Ordering::Relaxed) {
            outs(
                "cannot read the kernel's vmemmap_base from the end-test marker: heap locations are not named by slab cache",
            );
        }
    }
    if let Some(layout) = &p.cfg.percpu
        && !percpu::place_record(layout, &mut VcpuMemory(v), &mut rec)
        && !p.percpu_unreadable.swap(true, Ordering::Relaxed)
    {
        outs(
            "cannot read the kernel's per-CPU offsets from the end-test marker: per-CPU locations are not placed",
        );
    }
    write_record(p, &rec, raw);
}

/// Guest memory as the vCPU running the end-test marker sees it. Kernel addresses (the page
/// array, slab caches) are mapped in every address space of the guest, including the user
/// process that executes the marker, unless page-table isolation hides them (then reads fail
/// and nothing is named).
struct VcpuMemory<'a>(&'a mut Vcpu);

impl GuestMemory for VcpuMemory<'_> {
    fn read(&mut self, vaddr: u64, buf: &mut [u8]) -> bool {
        if buf.is_empty() {
            return true;
        }
        let v = &mut *self.0;
        // SAFETY: called on the vCPU's own thread inside a callback (the API's vCPU context);
        // the byte array is ours and QEMU grows it to `len` on success.
        unsafe {
            if v.membuf.is_null() {
                v.membuf = g_byte_array_new();
            }
            g_byte_array_set_size(v.membuf, 0);
            if !qemu_plugin_read_memory_vaddr(vaddr, v.membuf, buf.len()) {
                return false;
            }
            if ((*v.membuf).len as usize) < buf.len() {
                return false;
            }
            std::ptr::copy_nonoverlapping((*v.membuf).data, buf.as_mut_ptr(), buf.len());
        }
        true
    }
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
        register_translation(id);
        plugin().instrumented.store(true, Ordering::Release);
        outs("memory instrumentation enabled");
    });
}

fn register_translation(id: qemu_plugin_id_t) {
    // SAFETY: registering callbacks with the id QEMU gave us.
    unsafe {
        qemu_plugin_register_vcpu_tb_trans_cb(id, Some(on_translate));
        qemu_plugin_register_atexit_cb(id, Some(on_exit), std::ptr::null_mut());
    }
}

unsafe extern "C" fn on_translate(_id: qemu_plugin_id_t, tb: *mut qemu_plugin_tb) {
    guard("translation callback", || {
        let p = plugin();
        let instrument = p.instrument.load(Ordering::Acquire);
        let n = unsafe { qemu_plugin_tb_n_insns(tb) };
        for i in 0..n {
            // SAFETY: `i` is below the block's instruction count.
            let insn = unsafe { qemu_plugin_tb_get_insn(tb, i) };
            unsafe { instrument_insn(insn, instrument, p.cfg.user) };
            if instrument && p.cfg.stacks {
                unsafe { instrument_flow(insn) };
            }
        }
    });
}

unsafe fn instrument_insn(insn: *mut qemu_plugin_insn, memory: bool, user: bool) {
    unsafe {
        if qemu_plugin_insn_size(insn) == marker::LEN {
            let mut bytes = [0u8; marker::LEN];
            let got = qemu_plugin_insn_data(insn, bytes.as_mut_ptr().cast(), marker::LEN);
            if let Some(cmd) = marker::decode(&bytes[..got]) {
                qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    Some(on_marker),
                    qemu_plugin_cb_flags::QEMU_PLUGIN_CB_R_REGS,
                    cmd as usize as *mut c_void,
                );
                return;
            }
        }
        let pc = qemu_plugin_insn_vaddr(insn);
        // Decided per instruction at translation time: kernel code that touches user memory
        // (copy_to_user) counts, user code only with `user=on` (off, it gets no callback and
        // runs as fast as untraced code). The buffer keeps only accesses inside a call.
        if memory && traced_pc(pc, user) {
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

/// Gives a kernel `call` or `ret` the memory callback that feeds the shadow call stack
/// (decoded from the instruction's bytes, once per translation).
unsafe fn instrument_flow(insn: *mut qemu_plugin_insn) {
    unsafe {
        let pc = qemu_plugin_insn_vaddr(insn);
        if !is_kernel_pc(pc) {
            return;
        }
        let mut bytes = [0u8; 16];
        let got = qemu_plugin_insn_data(insn, bytes.as_mut_ptr().cast(), bytes.len());
        let (cb, rw, data): (qemu_plugin_vcpu_mem_cb_t, _, u64) = match stack::decode(&bytes[..got])
        {
            Some(Flow::Call) => (
                Some(on_call),
                qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_W,
                pc + qemu_plugin_insn_size(insn) as u64,
            ),
            Some(Flow::Ret) => (Some(on_ret), qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_R, 0),
            None => return,
        };
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

/// SAFETY: call from a vCPU thread (the register list is per vCPU).
pub(crate) unsafe fn find_register(name: &str) -> *mut qemu_plugin_register {
    unsafe {
        let list = qemu_plugin_get_registers();
        if list.is_null() {
            return std::ptr::null_mut();
        }
        let descs = std::slice::from_raw_parts(
            (*list).data as *const qemu_plugin_reg_descriptor,
            (*list).len as usize,
        );
        let found = descs
            .iter()
            .find(|d| CStr::from_ptr(d.name).to_bytes() == name.as_bytes())
            .map_or(std::ptr::null_mut(), |d| d.handle);
        g_array_free(list, true);
        found
    }
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

unsafe fn plugin_args(argc: c_int, argv: *mut *mut c_char) -> Vec<String> {
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            unsafe { CStr::from_ptr(*argv.add(i)) }
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

pub(crate) fn vcpu_count(info: &qemu_info_t) -> usize {
    if !info.system_emulation {
        return FALLBACK_VCPUS;
    }
    // SAFETY: the `system` member is the one QEMU fills in system emulation.
    let max = unsafe { info.__bindgen_anon_1.system.max_vcpus };
    usize::try_from(max).unwrap_or(FALLBACK_VCPUS).max(1)
}

fn install(id: qemu_plugin_id_t, info: &qemu_info_t, args: &[String]) -> Result<(), String> {
    let cfg = Config::parse(args).map_err(|e| e.to_string())?;
    if let crate::config::Mode::RefTrace(layout) = cfg.mode {
        return crate::plugin_reftrace::install(id, info, &cfg, layout);
    }
    let outputs = open_outputs(&cfg)?;
    let vcpus = (0..vcpu_count(info))
        .map(|_| {
            VcpuCell(UnsafeCell::new(Vcpu {
                buffer: CallBuffer::new(cfg.max_accesses),
                rdi: std::ptr::null_mut(),
                regbuf: std::ptr::null_mut(),
                membuf: std::ptr::null_mut(),
            }))
        })
        .collect();
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
    register_translation(id);
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
