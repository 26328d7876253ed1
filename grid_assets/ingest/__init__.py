"""Reading the landing folder and parsing raw event lines; no Dagster and no database here."""
