//! Chat templates: the model's own Jinja template from its GGUF metadata, rendered with
//! minijinja (with Python-compatible string methods, as Hugging Face templates expect), and
//! Civia's Mistral `[INST]` template when the model has none or it cannot be compiled.

use civia_ipc::{ChatMessage, TemplateSource};
use minijinja::{Environment, Error, ErrorKind, Value};

/// Mistral instruct format: `<s>[INST] user [/INST] answer</s>[INST] …`. System messages are
/// not dropped: they are prepended to the next user turn, as Mistral's own templates do.
pub const MISTRAL_FALLBACK: &str = "{{ bos_token }}\
{%- set ns = namespace(sys='') -%}\
{%- for m in messages -%}\
{%- if m.role == 'system' -%}{%- set ns.sys = ns.sys + m.content + '\n\n' -%}\
{%- elif m.role == 'user' -%}[INST] {{ ns.sys }}{{ m.content }} [/INST]{%- set ns.sys = '' -%}\
{%- elif m.role == 'assistant' -%}{{ ' ' + m.content + eos_token }}\
{%- endif -%}\
{%- endfor -%}\
{%- if ns.sys %}[INST] {{ ns.sys | trim }} [/INST]{% endif -%}";

#[derive(Debug, thiserror::Error)]
#[error("chat template: {0}")]
pub struct TemplateError(String);

/// A compiled chat template with the model's special token texts.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: TemplateSource,
    bos: String,
    eos: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .finish()
    }
}

fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    // HF templates are written for Jinja with trim_blocks/lstrip_blocks off; keep defaults.
    env
}

impl ChatTemplate {
    /// Compiles `gguf_template` when given and valid, else the Mistral fallback.
    pub fn new(gguf_template: Option<&str>, bos: &str, eos: &str) -> Self {
        let mut env = environment();
        let mut source = TemplateSource::MistralFallback;
        if let Some(t) = gguf_template {
            match env.add_template_owned("chat", t.to_string()) {
                Ok(()) => source = TemplateSource::Gguf,
                Err(e) => log::warn!(
                    "the model's chat template does not compile ({e}); using the Mistral [INST] fallback"
                ),
            }
        }
        if source == TemplateSource::MistralFallback {
            // The fallback is a constant covered by tests; it always compiles.
            if let Err(e) = env.add_template("chat", MISTRAL_FALLBACK) {
                log::error!("built-in Mistral template does not compile: {e}");
            }
        }
        Self {
            env,
            source,
            bos: bos.to_string(),
            eos: eos.to_string(),
        }
    }

    pub fn source(&self) -> TemplateSource {
        self.source
    }

    /// Renders the conversation followed by the assistant's generation prompt.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| TemplateError(e.to_string()))?;
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| Value::from_serialize(serde_json_like(&m.role, &m.content)))
            .collect();
        tmpl.render(minijinja::context! {
            messages => msgs,
            bos_token => self.bos,
            eos_token => self.eos,
            add_generation_prompt => true,
            tools => Value::from(()),
        })
        .map_err(|e| TemplateError(describe(&e)))
    }
}

fn serde_json_like(role: &str, content: &str) -> std::collections::BTreeMap<&'static str, String> {
    let mut m = std::collections::BTreeMap::new();
    m.insert("role", role.to_string());
    m.insert("content", content.to_string());
    m
}

fn describe(e: &Error) -> String {
    match e.detail() {
        Some(d) if e.kind() == ErrorKind::InvalidOperation => d.to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    const CHATML_WITH_DEFAULT_SYSTEM: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn mistral_fallback_single_turn() {
        let t = ChatTemplate::new(None, "<s>", "</s>");
        assert_eq!(t.source(), TemplateSource::MistralFallback);
        let out = t.render(&[msg("user", "Bonjour ?")]).unwrap();
        assert_eq!(out, "<s>[INST] Bonjour ? [/INST]");
    }

    #[test]
    fn mistral_fallback_keeps_system_and_history() {
        let t = ChatTemplate::new(None, "<s>", "</s>");
        let out = t
            .render(&[
                msg("system", "Tu es l'assistant de la mairie."),
                msg("user", "Q1"),
                msg("assistant", "R1"),
                msg("user", "Q2"),
            ])
            .unwrap();
        assert_eq!(
            out,
            "<s>[INST] Tu es l'assistant de la mairie.\n\nQ1 [/INST] R1</s>[INST] Q2 [/INST]"
        );
    }

    #[test]
    fn mistral_fallback_lone_system_is_not_dropped() {
        let t = ChatTemplate::new(None, "<s>", "</s>");
        let out = t.render(&[msg("system", "Consigne")]).unwrap();
        assert_eq!(out, "<s>[INST] Consigne [/INST]");
    }

    #[test]
    fn gguf_chatml_template_keeps_the_given_system_prompt() {
        let t = ChatTemplate::new(
            Some(CHATML_WITH_DEFAULT_SYSTEM),
            "<|im_start|>",
            "<|im_end|>",
        );
        assert_eq!(t.source(), TemplateSource::Gguf);
        let out = t
            .render(&[
                msg("system", "You are a helpful assistant."),
                msg("user", "What is the capital of France?"),
            ])
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
        );
        let out = t.render(&[msg("user", "Hi")]).unwrap();
        assert!(out.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
    }

    #[test]
    fn hf_templates_with_python_methods_and_raise_exception_work() {
        let tmpl = "{% if messages[0]['role'] == 'assistant' %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% for m in messages %}{{ m['content'].strip() | upper }}{% endfor %}";
        let t = ChatTemplate::new(Some(tmpl), "<s>", "</s>");
        assert_eq!(t.render(&[msg("user", "  abc ")]).unwrap(), "ABC");
        let err = t.render(&[msg("assistant", "x")]).unwrap_err();
        assert!(err.to_string().contains("roles must alternate"), "{err}");
    }

    #[test]
    fn broken_gguf_template_falls_back() {
        let t = ChatTemplate::new(Some("{% for x in %}"), "<s>", "</s>");
        assert_eq!(t.source(), TemplateSource::MistralFallback);
    }

    #[test]
    fn template_syntax_in_content_is_data_not_code() {
        let t = ChatTemplate::new(None, "<s>", "</s>");
        let out = t.render(&[msg("user", "{{ 7*7 }} {% raise %}")]).unwrap();
        assert_eq!(out, "<s>[INST] {{ 7*7 }} {% raise %} [/INST]");
    }
}
