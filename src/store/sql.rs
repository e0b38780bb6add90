//! Helpers every store module writes SQL with: typed column reads,
//! parameters, placeholders per backend, multi-row chunking, and a small
//! statement builder.

use super::*;

/// Reads a column, turning a decode failure into `StoreError`.
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    Ok(row.try_get::<T, _>(name)?)
}

/// Reads an optional column (NULL → None).
pub(crate) fn opt<'r, T>(row: &'r AnyRow, name: &str) -> Result<Option<T>>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    Ok(row.try_get::<Option<T>, _>(name)?)
}

/// Parses a stored name into its type, or reports corruption.
pub(crate) fn parsed<T: std::str::FromStr>(row: &AnyRow, name: &str) -> Result<T> {
    let s: String = col(row, name)?;
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("column {name} holds `{s}`")))
}

/// A value bound to a dynamically built query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
    /// An integer column's value or NULL.
    IntOrNull(Option<i64>),
    /// A text column's value or NULL.
    TextOrNull(Option<String>),
}

/// `all` in chunks of a power of two rows, at most `max`, largest first:
/// multi-row statements then take a few texts only, each prepared once per
/// connection.
pub(crate) fn power_of_two_chunks<T>(all: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = all;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (chunk, after) = rest.split_at(1 << rest.len().min(max).ilog2());
        rest = after;
        Some(chunk)
    })
}

/// Writes the placeholders of a statement whose parameters are each used
/// once, in the order they are bound: `$1, $2, …`, or on SQLite, for
/// statements with many parameters, anonymous `?`. SQLite takes `$7` for
/// a name, looked up in a list when the statement is prepared and again
/// for each value bound (sqlx asks each parameter's name): quadratic in
/// the number of parameters, 5% of the ingest processor's SQLite time with
/// a batch's 600-parameter statements.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Marks {
    anonymous: bool,
    count: usize,
}

impl Marks {
    /// Anonymous placeholders on SQLite, numbered ones on PostgreSQL.
    pub fn new(backend: Backend) -> Self {
        Marks {
            anonymous: backend == Backend::Sqlite,
            count: 0,
        }
    }
    /// Appends the next placeholder to `text`.
    pub fn push_to(&mut self, text: &mut String) {
        self.count += 1;
        if self.anonymous {
            text.push('?');
        } else {
            text.push('$');
            text.push_str(&self.count.to_string());
        }
    }
    /// Appends `(…, …)`: a row of `columns` placeholders.
    pub fn push_row(&mut self, text: &mut String, columns: usize) {
        text.push('(');
        for i in 0..columns {
            if i > 0 {
                text.push_str(", ");
            }
            self.push_to(text);
        }
        text.push(')');
    }
    /// `rows` rows of `columns` placeholders, comma-separated, for a
    /// multi-row `VALUES`.
    pub fn rows(&mut self, rows: usize, columns: usize) -> String {
        let mut text = String::with_capacity(rows * columns * 4);
        for i in 0..rows {
            if i > 0 {
                text.push_str(", ");
            }
            self.push_row(&mut text, columns);
        }
        text
    }
}

/// Builds SQL with placeholders and their values side by side (`$n`, or
/// `?` when made by [`Sql::for_backend`] on SQLite: see [`Marks`]).
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub params: Vec<Param>,
    marks: Marks,
}

impl Sql {
    /// A builder whose placeholders suit `backend` best.
    pub fn for_backend(backend: Backend) -> Self {
        Sql {
            marks: Marks::new(backend),
            ..Sql::default()
        }
    }
    /// Appends SQL text.
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    /// Appends a placeholder bound to `p`.
    pub fn bind(&mut self, p: Param) -> &mut Self {
        self.params.push(p);
        self.marks.push_to(&mut self.text);
        self
    }
    /// Appends a parenthesised list of placeholders bound to `params`, for `IN (…)`.
    pub fn bind_list(&mut self, params: impl IntoIterator<Item = Param>) -> &mut Self {
        self.text.push('(');
        for (i, p) in params.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(p);
        }
        self.text.push(')');
        self
    }
    /// The query, ready to run.
    pub fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.text.clone()));
        for p in &self.params {
            q = match p {
                Param::Int(i) => q.bind(*i),
                Param::Text(t) => q.bind(t.clone()),
                Param::IntOrNull(i) => q.bind(*i),
                Param::TextOrNull(t) => q.bind(t.clone()),
            };
        }
        q
    }
}
