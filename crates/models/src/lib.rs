//! The built-in interface models, and the registry the CLI lists and runs them from.
//!
//! Toy models (`counter`, `getset`, `watermark`, `rename`, `trackforget`, `upipe`, `kv`, `set`)
//! are small interfaces with known commutativity answers; they document the model API by example
//! and test the pipeline end to end. `posix` is the paper's file-system and virtual-memory model.
//! `determinator` is Determinator's kernel interface (Put, Get, Ret and their options).

pub mod determinator;
pub mod posix;
pub mod toys;

use commuter_engine::DynModel;

/// Every built-in model, in listing order.
pub fn builtin_models() -> Vec<Box<dyn DynModel>> {
    vec![
        Box::new(posix::PosixModel::default()),
        Box::new(toys::counter::CounterModel),
        Box::new(toys::getset::GetSetModel),
        Box::new(toys::watermark::WatermarkModel),
        Box::new(toys::rename::RenameModel),
        Box::new(toys::trackforget::TrackForgetModel),
        Box::new(toys::upipe::UpipeModel),
        Box::new(toys::kv::KvModel),
        Box::new(toys::set::SetModel),
        Box::new(determinator::DeterminatorModel),
    ]
}

/// The built-in model called `name`.
pub fn find_model(name: &str) -> Option<Box<dyn DynModel>> {
    builtin_models().into_iter().find(|m| m.name() == name)
}
