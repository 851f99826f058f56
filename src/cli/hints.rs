//! What to do next, in terms of this command line's flags and commands: the library's errors
//! say what went wrong and carry the data; only here are they matched to a hint (as uv's
//! `hints_for_error`), so that the same errors over HTTP never name a flag.

use crate::agents::llm::LlmError;
use crate::agents::AgentError;
use crate::corpus::CorpusError;
use crate::demo::DemoError;
use crate::episode::EpisodeError;
use crate::eval::EvalError;
use crate::guest::GuestError;
use crate::inject::InjectError;
use crate::plot::PlotError;
use crate::policy::DeviceError;
use crate::protocol::export::ExportError;
use crate::protocol::validate::ValidationError;
use crate::selfplay::SelfPlayError;
use crate::train::TrainError;
use std::error::Error;

/// The hints for every error in `err`'s chain, outermost first, without repeats.
pub(super) fn hints_for_error(err: &anyhow::Error) -> Vec<String> {
    let mut hints: Vec<String> = Vec::new();
    for cause in err.chain() {
        if let Some(hint) = hint(cause) {
            if !hints.contains(&hint) {
                hints.push(hint);
            }
        }
    }
    hints
}

/// `err`'s message followed by its hint lines (for errors reported one by one, as export's).
pub(super) fn with_hints(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(hint) = hint(e) {
            text.push_str("\nspar: hint: ");
            text.push_str(&hint);
        }
        cause = e.source();
    }
    text
}

/// The hint for one error. A wrapper whose variant is `transparent` hides the wrapped error
/// from the source chain, so wrappers are opened here by hand.
fn hint(err: &(dyn Error + 'static)) -> Option<String> {
    macro_rules! try_type {
        ($($ty:ty => $f:ident),* $(,)?) => {
            $(if let Some(e) = err.downcast_ref::<$ty>() {
                return $f(e);
            })*
        };
    }
    try_type!(
        CorpusError => corpus,
        DemoError => demo,
        LlmError => llm,
        AgentError => agent,
        SelfPlayError => selfplay,
        DeviceError => device,
        ExportError => export,
        PlotError => plot,
        TrainError => train,
        EvalError => eval,
        InjectError => inject,
        EpisodeError => episode,
        GuestError => guest,
        ValidationError => validation,
    );
    None
}

fn corpus(e: &CorpusError) -> Option<String> {
    Some(match e {
        CorpusError::List { .. } => "pass an existing directory with --corpus".into(),
        CorpusError::NoSuchProject(_) => "`spar corpus list` shows what is there".into(),
        CorpusError::NameTaken(name) => {
            format!("remove it with `spar corpus rm {name}` or pick another name with --name")
        }
        _ => return None,
    })
}

fn demo(e: &DemoError) -> Option<String> {
    match e {
        DemoError::Empty(_) => Some("pass a corpus directory with --corpus".into()),
        DemoError::Corpus(e) => corpus(e),
        DemoError::Guest(e) => guest(e),
        DemoError::Train(e) => train(e),
        DemoError::Eval(e) => eval(e),
        DemoError::Plot(e) => plot(e),
    }
}

fn llm(e: &LlmError) -> Option<String> {
    match e {
        LlmError::MissingKey(_) => Some("export it or pass another --llm-api-key-env".into()),
        _ => None,
    }
}

fn agent(e: &AgentError) -> Option<String> {
    match e {
        AgentError::LlmUnset => Some(LLM_FLAGS.into()),
        _ => None,
    }
}

/// What the llm agent needs on the command line.
const LLM_FLAGS: &str = "give --llm-base-url URL and --llm-model NAME (an OpenAI-compatible chat-completions endpoint), and --llm-api-key-env VAR if it wants a key";

fn selfplay(e: &SelfPlayError) -> Option<String> {
    match e {
        SelfPlayError::NoProjects => Some(TRAIN_PROJECTS.into()),
        SelfPlayError::Inject(e) => inject(e),
        _ => None,
    }
}

/// How training projects are named.
const TRAIN_PROJECTS: &str = "use --corpus NAME (built-in or imported, split = train)";

fn device(e: &DeviceError) -> Option<String> {
    Some(match e {
        DeviceError::NotBuilt => "rebuild with `cargo build --release --features cuda` (needs the CUDA toolkit), or use --device cpu".into(),
        DeviceError::NoGpu(_) => "use --device cpu".into(),
    })
}

fn export(e: &ExportError) -> Option<String> {
    match e {
        ExportError::Validate { .. } => Some("check that its project is in the corpus (`spar corpus list`) and run `spar validate` on it".into()),
        ExportError::Invalid { .. } => Some("`spar validate` on it shows the evidence".into()),
        ExportError::Load { .. } => None,
    }
}

fn plot(e: &PlotError) -> Option<String> {
    match e {
        PlotError::Empty { .. } => Some("run `spar train` first".into()),
        _ => None,
    }
}

fn train(e: &TrainError) -> Option<String> {
    Some(match e {
        TrainError::NoProjects => TRAIN_PROJECTS.into(),
        TrainError::NoConfig { .. } => {
            "--resume needs the run directory of an earlier `spar train --out`".into()
        }
        TrainError::RunExists { dir } => format!(
            "use --resume {} to continue it, or another --out (or delete it)",
            dir.display()
        ),
        TrainError::NoPolicy { .. } => {
            "--checkpoint takes the --out directory of `spar train`".into()
        }
        TrainError::Layout { .. } => "train a new run with `spar train --out NEW_DIR`".into(),
        TrainError::Device(e) => return device(e),
        TrainError::Inject(e) => return inject(e),
        TrainError::SelfPlay(e) => return selfplay(e),
        _ => return None,
    })
}

fn eval(e: &EvalError) -> Option<String> {
    match e {
        EvalError::NoHeldout => Some("give them with --corpus NAME".into()),
        EvalError::Inject(e) => inject(e),
        EvalError::SelfPlay(e) => selfplay(e),
        _ => None,
    }
}

fn inject(e: &InjectError) -> Option<String> {
    match e {
        InjectError::NoPassingTests { .. } => Some("run `spar test` on it to see why".into()),
        InjectError::NoHistory(_) => Some("import it with `spar corpus add git:PATH`, or use --strategy removal, procedural or mixed".into()),
        InjectError::Guest(e) => guest(e),
        InjectError::Validation(e) => validation(e),
        _ => None,
    }
}

fn episode(e: &EpisodeError) -> Option<String> {
    match e {
        EpisodeError::Invalid(_) => Some("run `spar validate` on it".into()),
        EpisodeError::Guest(e) => guest(e),
        EpisodeError::Validation(e) => validation(e),
        _ => None,
    }
}

fn validation(e: &ValidationError) -> Option<String> {
    match e {
        ValidationError::Run(e) => guest(e),
    }
}

fn guest(e: &GuestError) -> Option<String> {
    match e {
        GuestError::Precompile(_) => Some("run `spar setup` to see the guest's output".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn hints_name_the_flags_and_reach_through_transparent_wrappers() {
        let err = anyhow::Error::from(DemoError::Train(TrainError::Device(DeviceError::NotBuilt)));
        let hints = hints_for_error(&err);
        assert_eq!(hints.len(), 1, "{hints:?}");
        assert!(hints[0].contains("--features cuda"), "{hints:?}");
        let err = anyhow::Error::from(TrainError::RunExists {
            dir: PathBuf::from("runs/a"),
        });
        assert_eq!(
            hints_for_error(&err),
            ["use --resume runs/a to continue it, or another --out (or delete it)"]
        );
    }

    #[test]
    fn library_messages_name_no_flag_and_errors_without_a_hint_get_none() {
        let err = CorpusError::NoSuchProject("nope".into());
        assert!(!err.to_string().contains("spar "), "{err}");
        let shown = with_hints(&err);
        assert!(shown.ends_with("spar: hint: `spar corpus list` shows what is there"));
        let plain = anyhow::anyhow!("something else");
        assert!(hints_for_error(&plain).is_empty());
    }
}
