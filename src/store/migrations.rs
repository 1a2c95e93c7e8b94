//! The schema migrations, one list per backend: `migrations/shared/` holds the migrations both
//! backends run byte for byte, `migrations/{sqlite,postgres}/` the ones whose SQL differs
//! (column types of the initial schema and of `resends`, the way 0009 adds CHECK constraints).
//! The files are compiled in. A migration that has been released never changes: a database
//! records each version's SHA-384 checksum, and sqlx refuses to open one whose recorded
//! checksum differs from the file's (the test below pins them).

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::Backend;

/// A migration file: version and description as sqlx reads them from its name
/// (`0002_delivery.sql` is version 2, "delivery"), and its SQL.
struct MigrationFile {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

macro_rules! migration_file {
    ($version:literal, $description:literal, $path:literal) => {
        MigrationFile {
            version: $version,
            description: $description,
            sql: include_str!(concat!("../../migrations/", $path)),
        }
    };
}

const SHARED: &[MigrationFile] = &[
    migration_file!(2, "delivery", "shared/0002_delivery.sql"),
    migration_file!(3, "jobs", "shared/0003_jobs.sql"),
    migration_file!(4, "run fingerprint", "shared/0004_run_fingerprint.sql"),
    migration_file!(5, "run warnings", "shared/0005_run_warnings.sql"),
    migration_file!(8, "job status", "shared/0008_job_status.sql"),
    migration_file!(10, "review pack", "shared/0010_review_pack.sql"),
    migration_file!(11, "statement pdf", "shared/0011_statement_pdf.sql"),
    migration_file!(12, "record keys", "shared/0012_record_keys.sql"),
    migration_file!(13, "statement line fx", "shared/0013_statement_line_fx.sql"),
];

const SQLITE: &[MigrationFile] = &[
    migration_file!(1, "initial", "sqlite/0001_initial.sql"),
    migration_file!(7, "resends", "sqlite/0007_resends.sql"),
    migration_file!(9, "status checks", "sqlite/0009_status_checks.sql"),
];

const POSTGRES: &[MigrationFile] = &[
    migration_file!(1, "initial", "postgres/0001_initial.sql"),
    migration_file!(7, "resends", "postgres/0007_resends.sql"),
    migration_file!(9, "status checks", "postgres/0009_status_checks.sql"),
];

/// The migrations of `backend`, in version order.
pub(super) fn migrator(backend: Backend) -> Migrator {
    let own = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let mut files: Vec<&MigrationFile> = own.iter().chain(SHARED).collect();
    files.sort_by_key(|file| file.version);
    // A version in both lists would be applied twice or hide one of them.
    assert!(
        files
            .windows(2)
            .all(|pair| pair[0].version < pair[1].version),
        "each migration version is in one list only"
    );
    let migrations = files
        .into_iter()
        .map(|file| {
            Migration::new(
                file.version,
                Cow::Borrowed(file.description),
                MigrationType::Simple,
                Cow::Borrowed(file.sql),
                // As sqlx reads a migration file: a first line saying so runs it outside a
                // transaction (none of ours does).
                file.sql.starts_with("-- no-transaction"),
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (version, description, SHA-384) of every released migration, as existing databases
    /// recorded them when the files were still one folder per backend.
    const SQLITE_RECORDED: &[(i64, &str, &str)] = &[
        (
            1,
            "initial",
            "9b635fcfe299b424707008e1c6f7877bf6fe192f0fc0c4f91ec66efa0ccbffe19c829415ee661bf4ac0943a4c74ec022",
        ),
        (
            2,
            "delivery",
            "a62bc742fb8145fa81a1aec6156cd77dec281fc53a53513b61dd338f4a6eed15bc40f84c42d1875df10bf1177f7177d9",
        ),
        (
            3,
            "jobs",
            "92bd1b160b5cfceb172a56903d549726b27312797e18dc41049379d880da1ce237f45c31d9ae9939d6b5312cf2ed7f2a",
        ),
        (
            4,
            "run fingerprint",
            "68665a7bc578a9e80d5f8a7278db89901d6c2947dc95267225ec7c9759ef50392f7dd449412b1787048804a950bbcd0a",
        ),
        (
            5,
            "run warnings",
            "aa4ad7c6fd57a0e17fcdbb406e36b12a547e53d4e16fc747f47999ee5a1c43af3fdd00ff11c7851fbeffccb650bb3536",
        ),
        (
            7,
            "resends",
            "693d73c354033ac6d0f818134585221be951181dbbf97cedf9c1d2f3fefa1215cfc2cf328e889809f4eac3ca7c04ad0c",
        ),
        (
            8,
            "job status",
            "9d1d3edf426cead6041da4360ff7e824cff34493b3f0dfe46da1d19f91b07cdf46d1ec0be52974dd8e8e550b01257658",
        ),
        (
            9,
            "status checks",
            "9ef287ce505baef8d3b671993b44bde9e19cd417b4818708106704fc1c4d2fc93756e1a857f76bfe02c8119563ee7083",
        ),
        (
            10,
            "review pack",
            "6b931ebb172cf52a5f7e9dfa0be62e1f3e1b0aaca1101eaa85e3931abb7e81d442b7cda6d6c8adb08be19903ae05525f",
        ),
        (
            11,
            "statement pdf",
            "fcdc61ba08d4457156a820bd61cad3cb45b9d683158960b131e7031ac9777af64ef352c162313a5530ccdc7b421f9e73",
        ),
        (
            12,
            "record keys",
            "58123b26896d7a39597e854a94c540eeb7f704bcea10663b89f8ff208c76f3559be253b9ef6b27e95b0bf83a8bfaafa5",
        ),
        (
            13,
            "statement line fx",
            "4698271e830ed8780d2ea023a242b7f0791ef9dbd365968bdf781e2a01684e55cc884069716896a2f7a726d34e5091d5",
        ),
    ];

    const POSTGRES_RECORDED: &[(i64, &str, &str)] = &[
        (
            1,
            "initial",
            "9111582e806194a537507a4e7e730931848906f989729bf78f60420ccebc15615ee214e3589a1da2241422b34c953141",
        ),
        (
            2,
            "delivery",
            "a62bc742fb8145fa81a1aec6156cd77dec281fc53a53513b61dd338f4a6eed15bc40f84c42d1875df10bf1177f7177d9",
        ),
        (
            3,
            "jobs",
            "92bd1b160b5cfceb172a56903d549726b27312797e18dc41049379d880da1ce237f45c31d9ae9939d6b5312cf2ed7f2a",
        ),
        (
            4,
            "run fingerprint",
            "68665a7bc578a9e80d5f8a7278db89901d6c2947dc95267225ec7c9759ef50392f7dd449412b1787048804a950bbcd0a",
        ),
        (
            5,
            "run warnings",
            "aa4ad7c6fd57a0e17fcdbb406e36b12a547e53d4e16fc747f47999ee5a1c43af3fdd00ff11c7851fbeffccb650bb3536",
        ),
        (
            7,
            "resends",
            "29fed09def3c1c629ea1abba9aba7f564dac53dc9c661daaf6559c73141584a81664ca7d2eb915698e7fe1fa43b54b4e",
        ),
        (
            8,
            "job status",
            "9d1d3edf426cead6041da4360ff7e824cff34493b3f0dfe46da1d19f91b07cdf46d1ec0be52974dd8e8e550b01257658",
        ),
        (
            9,
            "status checks",
            "f03b413746f9d8fba6d893bbb52768244a1516cd7bfd5d5134f5eba671010f170717ed63b3f94d129bf8b580930b8312",
        ),
        (
            10,
            "review pack",
            "6b931ebb172cf52a5f7e9dfa0be62e1f3e1b0aaca1101eaa85e3931abb7e81d442b7cda6d6c8adb08be19903ae05525f",
        ),
        (
            11,
            "statement pdf",
            "fcdc61ba08d4457156a820bd61cad3cb45b9d683158960b131e7031ac9777af64ef352c162313a5530ccdc7b421f9e73",
        ),
        (
            12,
            "record keys",
            "58123b26896d7a39597e854a94c540eeb7f704bcea10663b89f8ff208c76f3559be253b9ef6b27e95b0bf83a8bfaafa5",
        ),
        (
            13,
            "statement line fx",
            "4698271e830ed8780d2ea023a242b7f0791ef9dbd365968bdf781e2a01684e55cc884069716896a2f7a726d34e5091d5",
        ),
    ];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn every_released_migration_keeps_its_version_and_checksum() {
        for (backend, recorded) in [
            (Backend::Sqlite, SQLITE_RECORDED),
            (Backend::Postgres, POSTGRES_RECORDED),
        ] {
            let migrator = migrator(backend);
            let actual: Vec<(i64, String, String)> = migrator
                .iter()
                .map(|m| (m.version, m.description.to_string(), hex(&m.checksum)))
                .collect();
            let expected: Vec<(i64, String, String)> = recorded
                .iter()
                .map(|(v, d, c)| (*v, (*d).to_owned(), (*c).to_owned()))
                .collect();
            assert_eq!(actual, expected, "{backend:?}");
            assert!(
                migrator
                    .iter()
                    .all(|m| !m.no_tx && m.migration_type == MigrationType::Simple)
            );
        }
    }
}
