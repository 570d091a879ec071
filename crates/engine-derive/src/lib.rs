//! Derive macros (`Symbolic`, `SymEq`, `Value`) and the `#[symbolic]` attribute for models
//! written against `commuter-engine`. Generated code refers to `::commuter_engine`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::visit_mut::VisitMut;
use syn::{Data, DeriveInput, Expr, Fields, Ident, Path, parse_macro_input, parse_quote};

/// `#[derive(Symbolic)]` on a struct with named fields: a fresh value has a fresh field named
/// `<name>.<field>` for each field; equality is field-wise unless `#[symbolic(eq = path)]`
/// names a function `fn(&Self, &Self) -> Bool`. Also implements `SymEq`.
#[proc_macro_derive(Symbolic, attributes(symbolic))]
pub fn derive_symbolic(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input, |s| {
        let fresh = s.fields.iter().map(|f| {
            let label = f.to_string();
            quote! { #f: ::commuter_engine::Symbolic::fresh(&format!("{}.{}", name, #label)) }
        });
        let name = &s.name;
        let sym_eq = sym_eq_impl(s);
        let concrete = concrete_impl(s);
        quote! {
            impl ::commuter_engine::Symbolic for #name {
                fn fresh(name: &str) -> Self {
                    #name { #(#fresh),* }
                }
            }
            #sym_eq
            #concrete
        }
    })
}

/// `#[derive(SymEq)]`: field-wise model equality and concrete display, for call results.
/// (`#[derive(Symbolic)]` already includes both.)
#[proc_macro_derive(SymEq, attributes(symbolic))]
pub fn derive_sym_eq(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input, |s| {
        let sym_eq = sym_eq_impl(s);
        let concrete = concrete_impl(s);
        quote! { #sym_eq #concrete }
    })
}

fn concrete_impl(s: &StructInfo) -> TokenStream2 {
    let name = &s.name;
    let fields = &s.fields;
    let labels: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    quote! {
        impl ::commuter_engine::Concrete for #name {
            fn concrete(
                &self,
                cx: &mut ::commuter_engine::Concretizer,
            ) -> ::std::result::Result<::commuter_engine::serde_json::Value, ::commuter_engine::PoolExhausted> {
                let mut object = ::commuter_engine::serde_json::Map::new();
                #(object.insert(#labels.to_string(), ::commuter_engine::Concrete::concrete(&self.#fields, cx)?);)*
                Ok(::commuter_engine::serde_json::Value::Object(object))
            }
        }
    }
}

/// `#[derive(Value)]` (with `Symbolic`): the struct's leaves are its fields' leaves, so it can
/// be stored in maps and lists (as one array per leaf). Every field must itself be a `Value`.
#[proc_macro_derive(Value, attributes(symbolic))]
pub fn derive_value(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input, |s| {
        let name = &s.name;
        let fields = &s.fields;
        let types = &s.types;
        let labels: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        quote! {
            impl ::commuter_engine::Value for #name {
                fn layout(name: &str) -> ::std::vec::Vec<(::std::string::String, ::commuter_engine::z3::Sort)> {
                    let mut layout = ::std::vec::Vec::new();
                    #(layout.extend(<#types as ::commuter_engine::Value>::layout(
                        &format!("{}.{}", name, #labels)));)*
                    layout
                }
                fn leaves(&self) -> ::std::vec::Vec<::commuter_engine::z3::ast::Dynamic> {
                    let mut leaves = ::std::vec::Vec::new();
                    #(leaves.extend(::commuter_engine::Value::leaves(&self.#fields));)*
                    leaves
                }
                fn from_leaves(
                    leaves: &mut dyn ::std::iter::Iterator<Item = ::commuter_engine::z3::ast::Dynamic>,
                ) -> Self {
                    #name {
                        #(#fields: <#types as ::commuter_engine::Value>::from_leaves(leaves)),*
                    }
                }
                fn invariant(&self) -> ::commuter_engine::Bool {
                    ::commuter_engine::Bool::all([
                        #(::commuter_engine::Value::invariant(&self.#fields)),*
                    ])
                }
            }
        }
    })
}

struct StructInfo {
    name: Ident,
    fields: Vec<Ident>,
    types: Vec<syn::Type>,
    custom_eq: Option<Path>,
}

fn expand(input: &DeriveInput, body: impl FnOnce(&StructInfo) -> TokenStream2) -> TokenStream {
    match struct_info(input) {
        Ok(s) => body(&s).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn struct_info(input: &DeriveInput) -> syn::Result<StructInfo> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "symbolic structs cannot be generic; use concrete field types",
        ));
    }
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "only structs with named fields can be symbolic; model alternatives with Bool fields",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &data.fields,
            "symbolic structs need named fields (they name the symbolic variables)",
        ));
    };
    let mut custom_eq = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("symbolic")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("eq") {
                custom_eq = Some(meta.value()?.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error("expected `eq = path::to::function`"))
            }
        })?;
    }
    Ok(StructInfo {
        name: input.ident.clone(),
        fields: named.named.iter().filter_map(|f| f.ident.clone()).collect(),
        types: named.named.iter().map(|f| f.ty.clone()).collect(),
        custom_eq,
    })
}

fn sym_eq_impl(s: &StructInfo) -> TokenStream2 {
    let name = &s.name;
    let body = match &s.custom_eq {
        Some(path) => quote! { #path(self, other) },
        None => {
            let fields = &s.fields;
            quote! {
                ::commuter_engine::Bool::all([
                    #(::commuter_engine::SymEq::sym_eq(&self.#fields, &other.#fields)),*
                ])
            }
        }
    };
    quote! {
        impl ::commuter_engine::SymEq for #name {
            fn sym_eq(&self, other: &Self) -> ::commuter_engine::Bool {
                #body
            }
        }
    }
}

/// `#[symbolic]` on a function or an `impl` block: every `if` and `while` condition may be a
/// symbolic `Bool` (it branches) or a plain `bool`. `&&`, `||` and `!` in conditions keep their
/// short-circuit meaning: `if a && b` explores `a` first, then `b` only where `a` holds.
#[proc_macro_attribute]
pub fn symbolic(_args: TokenStream, item: TokenStream) -> TokenStream {
    let mut item = parse_macro_input!(item as syn::Item);
    ConditionRewriter.visit_item_mut(&mut item);
    quote!(#item).into()
}

struct ConditionRewriter;

impl ConditionRewriter {
    fn decide(cond: &mut Expr) {
        let rewritten = decide_expr(cond.clone());
        *cond = rewritten;
    }
}

fn decide_expr(e: Expr) -> Expr {
    match e {
        Expr::Binary(mut b) if matches!(b.op, syn::BinOp::And(_) | syn::BinOp::Or(_)) => {
            *b.left = decide_expr(*b.left);
            *b.right = decide_expr(*b.right);
            Expr::Binary(b)
        }
        Expr::Paren(mut p) => {
            *p.expr = decide_expr(*p.expr);
            Expr::Paren(p)
        }
        Expr::Unary(mut u) if matches!(u.op, syn::UnOp::Not(_)) => {
            *u.expr = decide_expr(*u.expr);
            Expr::Unary(u)
        }
        Expr::Let(l) => Expr::Let(l),
        other => {
            let tmp = format_ident!("__commuter_cond");
            parse_quote! {{
                let #tmp = #other;
                ::commuter_engine::Decide::decide(#tmp)
            }}
        }
    }
}

impl VisitMut for ConditionRewriter {
    fn visit_expr_if_mut(&mut self, node: &mut syn::ExprIf) {
        syn::visit_mut::visit_expr_if_mut(self, node);
        Self::decide(&mut node.cond);
    }
    fn visit_expr_while_mut(&mut self, node: &mut syn::ExprWhile) {
        syn::visit_mut::visit_expr_while_mut(self, node);
        Self::decide(&mut node.cond);
    }
}
