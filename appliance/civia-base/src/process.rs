//! What a child process is allowed before it runs another program (`pre_exec`): no
//! capabilities, no new privileges. One implementation for the model workers' jail
//! (civia-supervisor) and the programs civiad runs for others (smbclient).
//!
//! Why hand-written: two system calls; the capability crates bring allocation, which a
//! `pre_exec` closure must not do.

/// Empties the ambient, inheritable, permitted and effective capability sets.
///
/// # Safety
/// Call only in a child between `fork` and `exec` (a `pre_exec` closure): it makes only the
/// async-signal-safe `prctl` and `capset` system calls, on data on the stack.
pub unsafe fn drop_capabilities() -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: prctl on integers; capset reads a header and two data structs laid out as the
    // kernel's `__user_cap_header_struct` and `__user_cap_data_struct` (version 3).
    unsafe {
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sets `no_new_privs`: nothing run from here gains privileges (setuid, file capabilities).
///
/// # Safety
/// As [`drop_capabilities`].
pub unsafe fn no_new_privs() -> std::io::Result<()> {
    // SAFETY: prctl on integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
