//! What a script may make ovs-run compile, checked before Cranelift sees
//! it. Compile time grows faster than linearly with a function's locals: one
//! function with 40,000 locals in a 470 KB component took 22 s to compile.
//! The bounds here sit far above what compilers emit for real scripts
//! (CPython's interpreter loop, the largest function of the Python runtime,
//! has a few thousand locals) and far below that cost. Reading the counts is
//! a linear walk of the section headers and each function's local
//! declarations, no operator is decoded.
//!
//! What still gets past these bounds is stopped by the compile deadline
//! (`Engine::load`): `--timeout`.

use wasmparser::{Parser, Payload};

/// The largest component ovs-run reads or compiles (the Python and
/// JavaScript runtimes are 10-40 MiB).
pub const MAX_COMPONENT_BYTES: usize = 128 << 20;
/// Most functions in all the component's core modules together.
pub const MAX_FUNCTIONS: u64 = 100_000;
/// Most locals one function may declare.
pub const MAX_LOCALS_PER_FUNCTION: u64 = 10_000;
/// Most locals of all functions together.
pub const MAX_TOTAL_LOCALS: u64 = 2_000_000;

/// Why a component is refused before compiling.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TooBig {
    #[error("the component is {0} bytes, more than the {MAX_COMPONENT_BYTES} bytes ovs-run compiles")]
    Size(usize),
    #[error("the component has more than {MAX_FUNCTIONS} functions ({0} so far)")]
    Functions(u64),
    #[error(
        "function {index} of core module {module} declares {locals} locals, more than the \
         {MAX_LOCALS_PER_FUNCTION} ovs-run compiles (compile time grows faster than the locals)"
    )]
    Locals { module: u32, index: u64, locals: u64 },
    #[error("the component's functions declare more than {MAX_TOTAL_LOCALS} locals together ({0} so far)")]
    TotalLocals(u64),
    #[error("malformed component: {0}")]
    Malformed(String),
}

/// Check `bytes` against the bounds above; Ok when it may be compiled.
pub fn check(bytes: &[u8]) -> Result<(), TooBig> {
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(TooBig::Size(bytes.len()));
    }
    let malformed = |e: wasmparser::BinaryReaderError| TooBig::Malformed(e.to_string());
    let (mut functions, mut total_locals) = (0u64, 0u64);
    // Core modules are numbered in the order their code sections appear.
    let (mut module, mut index) = (0u32, 0u64);
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::CodeSectionStart { count, .. } => {
                module += 1;
                index = 0;
                functions += u64::from(count);
                if functions > MAX_FUNCTIONS {
                    return Err(TooBig::Functions(functions));
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut locals = 0u64;
                for decl in body.get_locals_reader().map_err(malformed)? {
                    locals += u64::from(decl.map_err(malformed)?.0);
                    if locals > MAX_LOCALS_PER_FUNCTION {
                        return Err(TooBig::Locals { module: module - 1, index, locals });
                    }
                }
                total_locals += locals;
                if total_locals > MAX_TOTAL_LOCALS {
                    return Err(TooBig::TotalLocals(total_locals));
                }
                index += 1;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with one function declaring `locals` i32 locals
    /// (hand-assembled: the bounds apply to the code section wherever it is).
    fn module_with_locals(locals: u32) -> Vec<u8> {
        let leb = |mut v: u32| {
            let mut out = Vec::new();
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(b);
                    return out;
                }
                out.push(b | 0x80);
            }
        };
        let mut body = vec![1]; // one local declaration
        body.extend(leb(locals));
        body.push(0x7f); // i32
        body.push(0x0b); // end
        let mut code = vec![1]; // one body
        code.extend(leb(body.len() as u32));
        code.extend(body);
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend([1, 4, 1, 0x60, 0, 0]); // type section: () -> ()
        m.extend([3, 2, 1, 0]); // function section: one function of type 0
        m.push(10);
        m.extend(leb(code.len() as u32));
        m.extend(code);
        m
    }

    #[test]
    fn a_function_with_too_many_locals_is_refused_naming_it() {
        assert_eq!(check(&module_with_locals(MAX_LOCALS_PER_FUNCTION as u32)), Ok(()));
        let e = check(&module_with_locals(40_000)).unwrap_err();
        assert_eq!(e, TooBig::Locals { module: 0, index: 0, locals: 40_000 });
        assert!(e.to_string().contains("40000 locals"), "{e}");
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let e = check(&vec![0; MAX_COMPONENT_BYTES + 1]).unwrap_err();
        assert!(matches!(e, TooBig::Size(_)), "{e}");
    }
}
