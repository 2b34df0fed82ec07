"""Radar survey picks: read them, grid them to 250 m truth, and judge beds against them.

Read (:func:`read_points`, :func:`iter_points`) CReSIS, Bedmap, x/y/z and
Parquet files into EPSG:3031 points; shift heights between geoid and ellipsoid
(:func:`to_ellipsoid`, :func:`to_geoid`); grid them onto the 250 m output grid
nested in the 1 km base grid (:func:`grid_points`) and write the truth
(:func:`write_geotiff`, :func:`write_zarr`; all in one call:
:func:`grid_survey_files`); fly synthetic surveys
(:func:`synthetic_survey`); evaluate beds at points and along transects
(:func:`evaluate_points`, :func:`transect`). See ``docs/survey.md``.
"""

from xdeepbedmap.survey.errors import SurveyError
from xdeepbedmap.survey.evaluation import evaluate_points, point_beds, survey_baseline, transect
from xdeepbedmap.survey.geoid import geoid_height, to_ellipsoid, to_geoid
from xdeepbedmap.survey.gridding import block_median, grid_points, output_geobox
from xdeepbedmap.survey.pipeline import grid_survey_files, stream_points
from xdeepbedmap.survey.readers import iter_points, read_points
from xdeepbedmap.survey.synthetic import synthetic_survey, write_cresis_csv
from xdeepbedmap.survey.writers import open_truth_layers, write_geotiff, write_zarr

__all__ = [
    "SurveyError",
    "block_median",
    "evaluate_points",
    "geoid_height",
    "grid_points",
    "grid_survey_files",
    "iter_points",
    "open_truth_layers",
    "output_geobox",
    "point_beds",
    "read_points",
    "stream_points",
    "survey_baseline",
    "synthetic_survey",
    "to_ellipsoid",
    "to_geoid",
    "transect",
    "write_cresis_csv",
    "write_geotiff",
    "write_zarr",
]
