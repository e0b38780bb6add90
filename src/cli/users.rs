//! `postdesk user add` and `postdesk user token`.

use super::*;

/// `postdesk user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an agent or admin account.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "agent")]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Read the password from the first line of standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create an API token for an account and print it once.
    Token {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
}

pub(super) async fn user_add(
    settings: &Settings,
    email: &str,
    role: &str,
    name: &str,
    password_stdin: bool,
) -> Result<()> {
    let email: EmailAddress = email.parse()?;
    let role: Role = role.parse()?;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.chars().count() < 10 {
            bail!("the password must have at least 10 characters");
        }
        (password, false)
    } else {
        (secrets::new_password(), true)
    };
    let store = open_store(settings).await.context("opening the database")?;
    if store.user_by_email(&email).await?.is_some() {
        bail!("an account with the address {email} already exists");
    }
    let password_hash = secrets::hash_password(&password)?;
    let user = store
        .insert_user(
            &NewUser {
                email,
                name: name.to_string(),
                role,
                password_hash,
            },
            now_millis(),
        )
        .await?;
    println!(
        "created {} {} (id {})",
        user.role.as_str(),
        user.email,
        user.id
    );
    if generated {
        println!("password: {password}");
        if std::io::stdout().is_terminal() {
            eprintln!("(shown once; it is stored only as a hash)");
        }
    }
    Ok(())
}

pub(super) async fn user_token(settings: &Settings, email: &str, label: &str) -> Result<()> {
    let email: EmailAddress = email.parse()?;
    let store = open_store(settings).await.context("opening the database")?;
    let user = store
        .user_by_email(&email)
        .await?
        .with_context(|| format!("no account has the address {email}"))?;
    let token = secrets::new_api_token();
    store
        .insert_api_token(user.id, &secrets::token_digest(&token), label, now_millis())
        .await?;
    println!("{token}");
    Ok(())
}
