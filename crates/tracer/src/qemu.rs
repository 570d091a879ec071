//! What both plugin modes ([`crate::plugin`], [`crate::plugin_reftrace`]) need from QEMU and
//! glib beyond their own callbacks: per-vCPU state, registers, guest memory, the marker
//! instruction's hook, QEMU's log, and the plugin's arguments. Only here and in the two
//! modes' glue is there FFI.

use crate::slab::GuestMemory;
use commuter_trace_format::marker::{self, Command};
use qemu_plugin_sys::*;
use std::cell::UnsafeCell;
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::sync::{Mutex, MutexGuard};

/// vCPU slots when QEMU does not say how many vCPUs there can be (user mode).
const FALLBACK_VCPUS: usize = 1024;

unsafe extern "C" {
    // glib is part of every QEMU process; the register and memory APIs fill a GByteArray.
    fn g_byte_array_new() -> *mut GByteArray;
    fn g_byte_array_set_size(array: *mut GByteArray, len: c_uint) -> *mut GByteArray;
    fn g_array_free(array: *mut GArray, free_segment: bool) -> *mut c_char;
}

/// One `T` per vCPU, each only ever touched by the thread running that vCPU (MTTCG runs one
/// thread per vCPU), so no lock is needed.
pub struct PerVcpu<T>(Box<[UnsafeCell<T>]>);

// SAFETY: each slot is accessed only from its own vCPU's thread (see `get`); the raw pointers a
// `T` holds are QEMU/glib handles not tied to the thread that created the table.
unsafe impl<T> Sync for PerVcpu<T> {}
unsafe impl<T> Send for PerVcpu<T> {}

impl<T> PerVcpu<T> {
    /// A slot for every vCPU QEMU may run.
    pub fn new(info: &qemu_info_t, mut make: impl FnMut() -> T) -> Self {
        PerVcpu(
            (0..vcpu_count(info))
                .map(|_| UnsafeCell::new(make()))
                .collect(),
        )
    }

    /// vCPU `idx`'s slot; `None` past the table.
    ///
    /// # Safety
    /// Call only from the thread running vCPU `idx`, and hold no other reference to its slot.
    #[allow(clippy::mut_from_ref)] // Exclusive by the one-thread-per-vCPU rule above.
    pub unsafe fn get(&self, idx: c_uint) -> Option<&mut T> {
        let cell = self.0.get(idx as usize)?;
        Some(unsafe { &mut *cell.get() })
    }
}

fn vcpu_count(info: &qemu_info_t) -> usize {
    if !info.system_emulation {
        return FALLBACK_VCPUS;
    }
    // SAFETY: the `system` member is the one QEMU fills in system emulation.
    let max = unsafe { info.__bindgen_anon_1.system.max_vcpus };
    usize::try_from(max).unwrap_or(FALLBACK_VCPUS).max(1)
}

/// Locks `m`; a poisoned lock only means a guarded callback panicked, and the data is still
/// usable.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes a line to QEMU's log.
pub fn outs(msg: &str) {
    let line =
        CString::new(format!("commuter-tracer: {msg}\n").replace('\0', " ")).unwrap_or_default();
    // SAFETY: a valid NUL-terminated string.
    unsafe { qemu_plugin_outs(line.as_ptr()) };
}

/// The handle of the register called `name`, or null.
///
/// # Safety
/// Call from a vCPU thread (the register list is per vCPU).
pub unsafe fn find_register(name: &str) -> *mut qemu_plugin_register {
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

/// A 64-bit register's value, read into `buf` (the vCPU's byte array, made on first use).
///
/// # Safety
/// Call inside a callback registered with register access, on the vCPU's own thread.
pub unsafe fn read_register(
    reg: *mut qemu_plugin_register,
    buf: &mut *mut GByteArray,
) -> Result<u64, String> {
    if reg.is_null() {
        return Err("the register was not found (no vCPU-init callback?)".into());
    }
    unsafe {
        let a = byte_array(buf);
        let n = qemu_plugin_read_register(reg, a);
        if n < 8 {
            return Err(format!("reading the register returned {n} bytes"));
        }
        let mut b = [0u8; 8];
        std::ptr::copy_nonoverlapping((*a).data, b.as_mut_ptr(), 8);
        Ok(u64::from_le_bytes(b))
    }
}

/// `*buf`, made on first use, emptied.
unsafe fn byte_array(buf: &mut *mut GByteArray) -> *mut GByteArray {
    unsafe {
        if buf.is_null() {
            *buf = g_byte_array_new();
        }
        g_byte_array_set_size(*buf, 0);
        *buf
    }
}

/// Guest memory as the vCPU running the current callback sees it, read through its byte array.
/// Kernel addresses (the page array, slab caches, tasks) are mapped in every address space of
/// the guest, unless page-table isolation hides them (then reads fail).
pub struct VcpuMemory<'a>(pub &'a mut *mut GByteArray);

impl GuestMemory for VcpuMemory<'_> {
    fn read(&mut self, vaddr: u64, buf: &mut [u8]) -> bool {
        if buf.is_empty() {
            return true;
        }
        // SAFETY: called on the vCPU's own thread inside a callback (the API's vCPU context);
        // the byte array is ours and QEMU grows it to `len` on success.
        unsafe {
            let a = byte_array(self.0);
            if !qemu_plugin_read_memory_vaddr(vaddr, a, buf.len())
                || ((*a).len as usize) < buf.len()
            {
                return false;
            }
            std::ptr::copy_nonoverlapping((*a).data, buf.as_mut_ptr(), buf.len());
        }
        true
    }
}

/// If `insn` is a marker instruction, gives it `callback` (with register access, the command
/// as its userdata: see [`marker_command`]) and says so.
///
/// # Safety
/// Call from a translation callback with one of its instructions.
pub unsafe fn hook_marker(
    insn: *mut qemu_plugin_insn,
    callback: qemu_plugin_vcpu_udata_cb_t,
) -> bool {
    unsafe {
        if qemu_plugin_insn_size(insn) != marker::LEN {
            return false;
        }
        let mut bytes = [0u8; marker::LEN];
        let got = qemu_plugin_insn_data(insn, bytes.as_mut_ptr().cast(), marker::LEN);
        let Some(cmd) = marker::decode(&bytes[..got]) else {
            return false;
        };
        qemu_plugin_register_vcpu_insn_exec_cb(
            insn,
            callback,
            qemu_plugin_cb_flags::QEMU_PLUGIN_CB_R_REGS,
            cmd as usize as *mut c_void,
        );
        true
    }
}

/// The command a marker callback was registered with by [`hook_marker`].
pub fn marker_command(userdata: *mut c_void) -> Option<Command> {
    Command::ALL
        .into_iter()
        .find(|c| *c as usize == userdata as usize)
}

/// Registers the translation and exit callbacks (again after a reset, which removes every
/// callback).
pub fn register_translation(
    id: qemu_plugin_id_t,
    on_translate: qemu_plugin_vcpu_tb_trans_cb_t,
    on_exit: qemu_plugin_udata_cb_t,
) {
    // SAFETY: registering callbacks with the id QEMU gave us.
    unsafe {
        qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
        qemu_plugin_register_atexit_cb(id, on_exit, std::ptr::null_mut());
    }
}

/// The plugin's `key=value` arguments.
///
/// # Safety
/// `argv` holds `argc` valid C strings.
pub unsafe fn plugin_args(argc: c_int, argv: *mut *mut c_char) -> Vec<String> {
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            unsafe { CStr::from_ptr(*argv.add(i)) }
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}
